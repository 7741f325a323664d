import { status } from '@grpc/grpc-js';
import { fromBinary } from '@bufbuild/protobuf';
import { StatusSchema } from '@switchyard/contracts';
import { failedPrecondition, invalidArguments, notFound, resourceExhausted } from './app-error';
import { decodeStatusDetails, encodeStatusDetails } from './status-details';

describe('google.rpc.Status encoding', () => {
  it('round-trips every detail type we send', () => {
    const details = {
      badRequest: [{ field: 'messages[0].content', description: 'must not be empty' }],
      quotaFailure: [{ subject: 'deployment:gpt-4o/tpm', description: 'limit 80000' }],
      preconditionFailure: [{ type: 'CIRCUIT', subject: 'gpt-4o', description: 'open' }],
      retryDelayMs: 61_250,
      errorInfo: { reason: 'RATE_LIMITED', domain: 'switchyard.router', metadata: { deployment: 'gpt-4o' } },
      resourceInfo: { resourceType: 'route', resourceName: 'chat', owner: '', description: '' },
    };
    const decoded = decodeStatusDetails(encodeStatusDetails(status.RESOURCE_EXHAUSTED, 'slow down', details));
    expect(decoded).toEqual({ code: status.RESOURCE_EXHAUSTED, message: 'slow down', details });
  });

  it('packs details as google.protobuf.Any with the standard type URLs', () => {
    const bytes = encodeStatusDetails(status.UNAVAILABLE, 'down', { retryDelayMs: 1000 });
    const raw = fromBinary(StatusSchema, bytes);
    expect(raw.details.map((d) => d.typeUrl)).toEqual(['type.googleapis.com/google.rpc.RetryInfo']);
  });
});

describe('AppError factories', () => {
  it('name the field and carry BadRequest violations', () => {
    const err = invalidArguments([
      { field: 'route', description: 'required' },
      { field: 'params.max_tokens', description: 'must be <= 4096, got 10000' },
    ]);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toBe('route: required; params.max_tokens: must be <= 4096, got 10000');
    expect(err.details.badRequest).toHaveLength(2);
    expect(() => invalidArguments([])).toThrow('violations must not be empty');
  });

  it('derive readable messages for notFound and resourceExhausted', () => {
    expect(notFound('route', 'chat-x').message).toBe('route "chat-x" not found');
    const exhausted = resourceExhausted({ violations: [{ subject: 'tenant:acme', description: 'RPM 60 reached' }], retryAfterMs: 0 });
    expect(exhausted.message).toBe('tenant:acme: RPM 60 reached');
    expect(exhausted.details.retryDelayMs).toBe(0);
    expect(failedPrecondition('circuit open', { violations: [{ type: 'T', subject: 's', description: 'd' }] }).details.preconditionFailure).toHaveLength(1);
  });
});
