import { KeyKind, LimitKind } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { ManualClock } from '@switchyard/util';
import type { BackgroundTasks } from '../background-tasks';
import { createLimiterPeer, type LimiterAcquire } from './limiter-peer';
import type { LimiterClient } from './peers';

const clock = new ManualClock(1_000_000);
const quiet = { warn() {}, error() {} };
/** Accounting retries are settle-retry.ts's subject: here each runs once. */
const once = { run: <T>(attempt: () => Promise<T>) => attempt(), stop() {} };
const tasks: BackgroundTasks = { run: (_n, _f, task) => void task(), drain: () => Promise.resolve(), pending: () => 0 };

function peer(acquire: LimiterClient['acquire']) {
  return createLimiterPeer({ client: { acquire } as LimiterClient, clock, logger: quiet, tasks, peerDeadlineMs: 500, settleRetry: once });
}

const ask = (over: Partial<LimiterAcquire> = {}): LimiterAcquire => ({
  deployment: 'd1',
  tenant: 'acme',
  tokens: 100,
  maxWaitMs: 0,
  requestId: 'req-1',
  deadlineAt: Number.POSITIVE_INFINITY,
  ...over,
});

const failing = (code: status) => (() => Promise.reject(Object.assign(new Error(status[code]), { code }))) as unknown as LimiterClient['acquire'];

describe('limiter peer (DESIGN "When our own dependencies fail": limiter)', () => {
  it('admits unmetered, degraded, when the limiter is unreachable', async () => {
    expect(await peer(failing(status.UNAVAILABLE)).acquire(ask())).toEqual({ granted: true, note: 'limiter unavailable', degraded: { kind: 'limiter-unavailable' } });
  });

  it("says so when the limiter admitted from its local fallback", async () => {
    const local = peer((() => Promise.resolve({ granted: true, reservationId: 'r1', localFallback: true })) as never);
    expect(await local.acquire(ask())).toEqual({ granted: true, reservationId: 'r1', note: 'limiter local fallback', degraded: { kind: 'limiter-local-fallback' } });
  });

  it('a queued wait that outlived its hop is the caller running out of time short of quota, not an outage', async () => {
    const admission = await peer(failing(status.DEADLINE_EXCEEDED)).acquire(ask({ maxWaitMs: 200 }));
    expect(admission).toEqual({ granted: false, retryAfterMs: 0, reason: 'd1 quota: still queued when the wait ran out', final: true });
  });

  it('an acquire the limiter refuses as invalid is a misconfiguration: refused, never admitted unmetered', async () => {
    const admission = await peer(failing(status.INVALID_ARGUMENT)).acquire(ask());
    expect(admission).toMatchObject({ granted: false, final: true, reason: 'limiter rejected the acquire (INVALID_ARGUMENT: INVALID_ARGUMENT)' });
  });

  it('a caller who left while queued is not admitted', async () => {
    const gone = new AbortController();
    gone.abort();
    const admission = await peer(failing(status.CANCELLED)).acquire(ask({ signal: gone.signal, maxWaitMs: 200 }));
    expect(admission).toEqual({ granted: false, retryAfterMs: 0, reason: 'caller cancelled while waiting for quota', final: true });
  });

  it('names the key and the limit that blocked; a blocked tenant ends the call', async () => {
    const blocked = peer((() => Promise.resolve({ granted: false, retryAfterMs: 900, blockedKey: { kind: KeyKind.TENANT, id: 'acme' }, blockedLimit: LimitKind.RPM })) as never);
    expect(await blocked.acquire(ask())).toEqual({ granted: false, retryAfterMs: 900, reason: 'tenant acme RPM exhausted', final: true });
  });
});
