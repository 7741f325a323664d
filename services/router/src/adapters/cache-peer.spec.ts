import { create, toBinary } from '@bufbuild/protobuf';
import { CompleteResponseSchema, LookupStatus } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { ManualClock } from '@switchyard/util';
import type { BackgroundTasks } from '../background-tasks';
import { createCachePeer } from './cache-peer';
import type { CacheClient } from './peers';

const clock = new ManualClock(1_000_000);
const quiet = { warn() {}, error() {} };
const tasks: BackgroundTasks = { run: (_n, _f, task) => void task(), drain: () => Promise.resolve(), pending: () => 0 };
const settings = { ttlMs: 1000, staleTtlMs: 1000, idempotencyWindowMs: 5000 };
const answer = toBinary(CompleteResponseSchema, create(CompleteResponseSchema, { content: 'cached' }));

function peer(lookup: (req: Record<string, unknown>, opts: { deadlineMs: number }) => Promise<unknown>) {
  return createCachePeer({ client: { lookup } as unknown as CacheClient, clock, logger: quiet, tasks, peerDeadlineMs: 500, settings });
}
const ask = (coalesce: boolean, deadlineAt = Number.POSITIVE_INFINITY) => ({ tenant: 't', key: 'chat:k', allowStale: true, coalesce, requestId: 'req-1', deadlineAt });

describe('cache peer (DESIGN "When our own dependencies fail": cache)', () => {
  it('is bypassed, never failing the call, when the cache is unreachable', async () => {
    const down = peer(() => Promise.reject(Object.assign(new Error('No connection established'), { code: status.UNAVAILABLE })));
    expect(await down.lookup(ask(true))).toEqual({ kind: 'unavailable' });
  });

  it('asks for no lease unless the call coalesces', async () => {
    const seen: Record<string, unknown>[] = [];
    const p = peer((req) => (seen.push(req), Promise.resolve({ status: LookupStatus.MISS, response: new Uint8Array(), ageMs: 0, leaseId: '', coalesced: false })));
    expect(await p.lookup(ask(false))).toEqual({ kind: 'miss' });
    expect(seen[0]).not.toHaveProperty('leaseTtlMs');
  });

  it('a coalescing miss holds the lease; a follower waits at most half its time left, and its hop allows for the wait', async () => {
    const seen: { req: Record<string, unknown>; deadlineMs: number }[] = [];
    const p = peer((req, opts) => (seen.push({ req, deadlineMs: opts.deadlineMs }), Promise.resolve({ status: LookupStatus.LEADER, response: new Uint8Array(), ageMs: 0, leaseId: 'lease-1', coalesced: false })));
    expect(await p.lookup(ask(true, clock.now() + 4000))).toEqual({ kind: 'miss', leaseId: 'lease-1' });
    expect(seen[0]!.req).toMatchObject({ leaseTtlMs: 4000, maxWaitMs: 2000 });
    expect(seen[0]!.deadlineMs).toBe(2050);
  });

  it("an identical call's answer, received after waiting, is a hit marked coalesced", async () => {
    const p = peer(() => Promise.resolve({ status: LookupStatus.HIT, response: answer, ageMs: 3, leaseId: '', coalesced: true }));
    const hit = await p.lookup(ask(true));
    expect(hit).toMatchObject({ kind: 'hit', ageMs: 3, coalesced: true });
    expect(hit.kind === 'hit' && hit.response.content).toBe('cached');
  });

  it('a leader that did not finish in time leaves the follower to call upstream itself, without a lease', async () => {
    const p = peer(() => Promise.resolve({ status: LookupStatus.WAIT, response: new Uint8Array(), ageMs: 0, leaseId: '', coalesced: false }));
    expect(await p.lookup(ask(true))).toEqual({ kind: 'miss' });
  });
});
