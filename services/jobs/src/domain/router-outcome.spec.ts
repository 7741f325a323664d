import { status } from '@grpc/grpc-js';
import { classifyRouterError } from './router-outcome';

const options = { retryDelayMs: 1000, maxTransient: 3 };

describe('classifyRouterError', () => {
  it('requeues a quota RESOURCE_EXHAUSTED after its retry-after, without counting it', () => {
    expect(classifyRouterError({ code: status.RESOURCE_EXHAUSTED, retryDelayMs: 2500 }, 99, options)).toEqual({ kind: 'requeue', delayMs: 2500, transient: false });
  });

  it('fails the job when the budget ran out', () => {
    expect(classifyRouterError({ code: status.RESOURCE_EXHAUSTED, retryDelayMs: 2500, reason: 'BUDGET_EXCEEDED' }, 0, options)).toEqual({ kind: 'fail' });
  });

  it('requeues the router\'s own UNAVAILABLE only up to the transient limit', () => {
    expect(classifyRouterError({ code: status.UNAVAILABLE, reason: 'ALL_CANDIDATES_FAILED' }, 1, options)).toEqual({ kind: 'requeue', delayMs: 1000, transient: true });
    expect(classifyRouterError({ code: status.UNAVAILABLE, reason: 'ALL_CANDIDATES_FAILED' }, 2, options)).toEqual({ kind: 'fail' });
  });

  it('requeues an UNAVAILABLE no router answered (unreachable, restarting) without counting it', () => {
    expect(classifyRouterError({ code: status.UNAVAILABLE }, 2, options)).toEqual({ kind: 'requeue', delayMs: 1000, transient: false });
    expect(classifyRouterError({ code: status.UNAVAILABLE, retryDelayMs: 0 }, 99, options)).toEqual({ kind: 'requeue', delayMs: 1000, transient: false });
  });

  it('requeues ABORTED (the same idempotency key still in flight) and fails client errors', () => {
    expect(classifyRouterError({ code: status.ABORTED, retryDelayMs: 1000 }, 0, options).kind).toBe('requeue');
    expect(classifyRouterError({ code: status.INVALID_ARGUMENT }, 0, options)).toEqual({ kind: 'fail' });
  });
});
