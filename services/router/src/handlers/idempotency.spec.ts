import { create, toBinary } from '@bufbuild/protobuf';
import { CompleteResponseSchema } from '@switchyard/contracts';
import { status, type AppError } from '@switchyard/grpc';
import { decodeKeptAnswer, encodeKeptAnswer, type CachePeer, type IdempotencyLease } from '../adapters/cache-peer';
import { createIdempotency, requestFingerprint } from './idempotency';
import type { PreparedCall } from './prepare-call';

function prepared(content: string, key = 'order-42'): PreparedCall {
  return {
    requestId: 'req-1',
    owner: { tenantId: 't' },
    deadlineAt: Number.POSITIVE_INFINITY,
    call: { routeName: 'chat', idempotencyKey: key, chat: { messages: [{ role: 'user', content }], maxTokens: 64 } },
  } as unknown as PreparedCall;
}

/** A cache whose idempotency lease answers with what an earlier call kept. */
function cacheKeeping(lease: IdempotencyLease): CachePeer {
  return { lookup: () => Promise.reject(new Error('unused')), store: () => undefined, releaseLease: () => undefined, claimIdempotency: () => Promise.resolve(lease) };
}

const answer = create(CompleteResponseSchema, { content: 'the first answer', requestId: 'req-0' });

describe('idempotency keys bound to their request', () => {
  it('replays the kept answer to the same request', async () => {
    const first = prepared('charge my card once');
    const kept = decodeKeptAnswer(encodeKeptAnswer(requestFingerprint(first.call), toBinary(CompleteResponseSchema, answer)));
    const claim = await createIdempotency(cacheKeeping({ kind: 'answered', ...kept }))(prepared('charge my card once'));
    expect(claim.replay?.content).toBe('the first answer');
  });

  it('refuses the same key with a different request: FAILED_PRECONDITION naming the key, not the first answer', async () => {
    const first = prepared('charge my card once');
    const kept = decodeKeptAnswer(encodeKeptAnswer(requestFingerprint(first.call), toBinary(CompleteResponseSchema, answer)));
    const err = (await createIdempotency(cacheKeeping({ kind: 'answered', ...kept }))(prepared('refund my card')).catch((e: unknown) => e)) as AppError;
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toMatch(/idempotency_key "order-42" was already used with a different request/);
    expect(err.details.preconditionFailure?.[0]?.subject).toBe('idempotency_key:order-42');
    expect(err.details.errorInfo?.reason).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('replays an answer kept before keys were bound (no fingerprint) unchecked', async () => {
    const claim = await createIdempotency(cacheKeeping({ kind: 'answered', ...decodeKeptAnswer(toBinary(CompleteResponseSchema, answer)) }))(prepared('anything'));
    expect(claim.replay?.content).toBe('the first answer');
  });

  it('fingerprints what changes the answer: route, messages, parameters', () => {
    const a = prepared('same');
    expect(requestFingerprint(prepared('same').call)).toBe(requestFingerprint(a.call));
    expect(requestFingerprint(prepared('other').call)).not.toBe(requestFingerprint(a.call));
    const otherRoute = { ...a.call, routeName: 'chat-2' };
    expect(requestFingerprint(otherRoute)).not.toBe(requestFingerprint(a.call));
    const longer = { ...a.call, chat: { ...a.call.chat, maxTokens: 65 } };
    expect(requestFingerprint(longer)).not.toBe(requestFingerprint(a.call));
  });

  it('stores the fingerprint beside the answer and reads both back', () => {
    const bytes = toBinary(CompleteResponseSchema, answer);
    const decoded = decodeKeptAnswer(encodeKeptAnswer('f'.repeat(64), bytes));
    expect(decoded.fingerprint).toBe('f'.repeat(64));
    expect(decoded.response).toEqual(bytes);
  });
});
