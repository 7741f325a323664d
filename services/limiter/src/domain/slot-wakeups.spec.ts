import { parseConfig } from '@switchyard/config';
import { ManualClock } from '@switchyard/util';
import { gatewayYaml } from '../../test/cluster';
import { createMemoryQuotaStore } from '../adapters/memory-quota-store';
import { type LimiterSettings, createLimiter } from './limiter';
import type { QuotaStore } from './quota-store';
import { createSlotWakeups } from './slot-wakeups';

const config = parseConfig(gatewayYaml({ pair: '{ concurrency: 2 }' }));

async function flush() {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

/** Replicas on one in-memory store; their sleeps never end on their own, so only a wake-up (or the caller) ends one. */
function replicas(n: number, settings: Partial<LimiterSettings> = {}) {
  const clock = new ManualClock(1_700_000_000_000);
  const shared = createMemoryQuotaStore({ clock });
  let asks = 0;
  const store: QuotaStore = {
    ...shared,
    acquire: (input) => {
      asks++;
      return shared.acquire(input);
    },
  };
  const naps: number[] = [];
  const announced: string[][] = [];
  const limiters = Array.from({ length: n }, () =>
    createLimiter({
      store,
      config,
      clock,
      settings,
      publisher: { publish: async () => undefined },
      slotFeed: { announce: async (keys) => void announced.push(keys) },
      wait: (ms, signal) =>
        new Promise((_, reject) => {
          naps.push(ms);
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
    }),
  );
  const acquire = (i: number, maxWaitMs: number, signal?: AbortSignal) =>
    limiters[i]!.acquire(
      { keys: [{ kind: 'deployment', id: 'pair' }], requests: 1, tokens: 0, reservationTtlMs: 0, maxWaitMs, requestId: '' },
      { now: () => clock.now(), ...(signal ? { signal } : {}) },
    );
  const grant = async (i: number) => {
    const r = await acquire(i, 0);
    if (!r.granted) throw new Error('expected a grant');
    return r.reservationId;
  };
  const settle = (i: number, reservationId: string) => limiters[i]!.settle({ reservationId, actualTokens: 0, cancelled: false });
  return { limiters, acquire, grant, settle, naps, announced, asks: () => asks };
}

/** Tracks a promise's outcome without awaiting it. */
function track<T>(p: Promise<T>) {
  const t: { value?: T; error?: unknown; done: boolean } = { done: false };
  p.then(
    (value) => Object.assign(t, { value, done: true }),
    (error: unknown) => Object.assign(t, { error, done: true }),
  );
  return t;
}

describe('slot wake-ups', () => {
  it('counts frees from restart() and wakes once the armed number arrived', () => {
    const wakeups = createSlotWakeups();
    const watch = wakeups.watch(['deployment:a', 'deployment:a', 'tenant:t']);
    const woken: string[] = [];
    wakeups.freed(['deployment:a']);
    watch.restart();
    expect(watch.arm('deployment:a', 2, () => woken.push('a'))).toBe(true);
    wakeups.freed(['deployment:b', 'tenant:t', 'deployment:a']);
    expect(woken).toEqual([]);
    wakeups.freed(['deployment:a']);
    expect(woken).toEqual(['a']);
    // Already freed enough since restart(): the waiter asks again at once instead of arming.
    expect(watch.arm('deployment:a', 2, () => woken.push('again'))).toBe(false);
    watch.close();
    expect(wakeups.watching()).toBe(0);
  });

  it('grants the head waiter as soon as a holder settles, and leaves the one behind it asleep until its turn', async () => {
    const r = replicas(1);
    const holders = [await r.grant(0), await r.grant(0)];
    const first = track(r.acquire(0, 10_000));
    await flush();
    const second = track(r.acquire(0, 10_000));
    await flush();
    expect(r.naps).toEqual([50, 50]);
    const asksBefore = r.asks();

    await r.settle(0, holders[0]!);
    await flush();
    expect(first).toMatchObject({ done: true, value: { granted: true } });
    expect(second.done).toBe(false);
    // The second waiter was two slots short: one Settle made only the head ask again.
    expect(r.asks() - asksBefore).toBe(1);
    expect(r.announced).toEqual([['deployment:pair']]);

    await r.settle(0, holders[1]!);
    await flush();
    expect(second).toMatchObject({ done: true, value: { granted: true } });
  });

  it('wakes a waiter on another replica only through the announced free', async () => {
    const r = replicas(2);
    const holders = [await r.grant(0), await r.grant(0)];
    const waiter = track(r.acquire(1, 10_000));
    await flush();
    await r.settle(0, holders[0]!);
    await flush();
    expect(waiter.done).toBe(false);
    r.limiters[1]!.slotsFreed(r.announced[0]!);
    await flush();
    expect(waiter).toMatchObject({ done: true, value: { granted: true } });
  });

  it('with wake-ups off, a Settle neither wakes nor announces: waiters only poll', async () => {
    const r = replicas(1, { concurrencyWakeup: false });
    const holder = await r.grant(0);
    await r.grant(0);
    const caller = new AbortController();
    const waiter = track(r.acquire(0, 10_000, caller.signal));
    await flush();
    await r.settle(0, holder);
    await flush();
    expect(waiter.done).toBe(false);
    expect(r.announced).toEqual([]);
    expect(r.naps).toEqual([50]);
    caller.abort(new Error('caller gone'));
    await flush();
    expect(waiter).toMatchObject({ done: true, error: new Error('caller gone') });
  });

  it('still ends the wait, and leaves the line, when the caller goes away', async () => {
    const r = replicas(1);
    const holder = await r.grant(0);
    await r.grant(0);
    const caller = new AbortController();
    const waiter = track(r.acquire(0, 10_000, caller.signal));
    await flush();
    caller.abort(new Error('caller gone'));
    await flush();
    expect(waiter).toMatchObject({ done: true, error: new Error('caller gone') });
    // Its ticket is gone: a newcomer that will not wait fits as soon as a slot frees.
    await r.settle(0, holder);
    expect((await r.acquire(0, 0)).granted).toBe(true);
  });
});
