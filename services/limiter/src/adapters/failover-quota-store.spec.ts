import { ManualClock } from '@switchyard/util';
import type { QuotaStore } from '../domain/quota-store';
import { createFailoverQuotaStore, shareOf } from './failover-quota-store';
import { createMemoryQuotaStore } from './memory-quota-store';

const key = { kind: 'deployment' as const, id: 'd', limits: { rpm: 10 } };
const input = (id: string) => ({ keys: [key], requests: 1, tokens: 0, ttlMs: 60_000, reservationId: id });

function setup(replicas = 3) {
  const clock = new ManualClock(1_700_000_000_000);
  const shared = createMemoryQuotaStore({ clock });
  let down = false;
  const unreachable = () => Promise.reject(Object.assign(new Error("Stream isn't writeable"), { name: 'Error' }));
  // The shared store, or a connection error while `down`.
  const flaky = new Proxy(shared, {
    get: (target, prop: keyof QuotaStore) => (down && prop !== 'close' ? unreachable : target[prop]),
  });
  const modes: string[] = [];
  const store = createFailoverQuotaStore({
    shared: flaky,
    local: createMemoryQuotaStore({ clock }),
    liveReplicas: () => replicas,
    retryAfterMs: 500,
    now: () => clock.now(),
    onModeChange: (m) => modes.push(m),
  });
  return { store, clock, modes, setDown: (v: boolean) => (down = v), shared };
}

describe('failover quota store', () => {
  it('admits this replica’s share (limit ÷ live replicas) while Redis is unreachable, and says so', async () => {
    const { store, setDown, modes } = setup(3);
    setDown(true);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.acquire(input(`r${i}`))));
    expect(results.filter((r) => r.granted)).toHaveLength(3);
    expect(results.every((r) => r.localFallback)).toBe(true);
    expect(store.mode()).toBe('local');
    expect(modes).toEqual(['local']);
    expect((await store.state(key)).localFallback).toBe(true);
  });

  it('returns to shared accounting once Redis answers again, and settles local reservations locally', async () => {
    const { store, setDown, clock, modes, shared } = setup(2);
    setDown(true);
    const local = await store.acquire(input('a'));
    expect(local).toMatchObject({ granted: true, localFallback: true });
    setDown(false);
    // Not retried before retryAfterMs…
    expect((await store.acquire(input('b'))).localFallback).toBe(true);
    clock.advance(500);
    const back = await store.acquire(input('c'));
    expect(back).toMatchObject({ granted: true });
    expect(back.localFallback).toBeUndefined();
    expect(modes).toEqual(['local', 'shared']);
    expect((await shared.state(key)).admittedRequests).toBe(1);
    if (local.granted) expect((await store.settle({ reservationId: local.reservationId, actualTokens: 0, cancelled: false })).found).toBe(true);
  });

  it('admits nothing locally when the share rounds to 0', async () => {
    const { store, setDown } = setup(20);
    setDown(true);
    expect(await store.acquire(input('x'))).toMatchObject({ granted: false, blockedBy: 'rpm', localFallback: true });
  });

  it('divides each limit among the live replicas, rounding down', () => {
    expect(shareOf({ rpm: 100, tpm: 1_000, tpd: 10_000, concurrency: 5 }, 3)).toEqual({ rpm: 33, tpm: 333, tpd: 3_333, concurrency: 1 });
  });
});
