import { ManualClock } from '@switchyard/util';
import { createLeaseBook, type LeaseEnd } from './budget-lease-book';
import { createLeasedBudgetPeer, leaseCeiling } from './budget-leases';
import type { BudgetHold, BudgetPeer, BudgetReserve } from './budget-peer';

const call = (over: Partial<BudgetReserve> = {}): BudgetReserve => ({
  tenant: 'acme',
  feature: '',
  apiKeyId: 'k1',
  hardCapped: true,
  amountMicros: 100,
  requestId: 'req',
  deadlineAt: Number.POSITIVE_INFINITY,
  ...over,
});

describe('lease book (local bookkeeping, injected clock)', () => {
  const setup = () => {
    const clock = new ManualClock(1_000_000);
    const ended: LeaseEnd[] = [];
    const book = createLeaseBook({ clock, leaseMs: 1_000, onEnd: (e) => ended.push(e) });
    return { clock, ended, book };
  };

  it('admits calls while the room (amount − actual − worst case in flight) fits them; settled calls give back their unused worst case', () => {
    const { book } = setup();
    book.install('k', 'acme', 'L1', 300);
    const a = book.admit('k', 100)!;
    const b = book.admit('k', 100)!;
    const c = book.admit('k', 100)!;
    expect([a, b, c].every(Boolean)).toBe(true);
    expect(book.admit('k', 100)).toBeUndefined();
    a.commit(30); // 70 of its worst case comes back
    expect(book.admit('k', 100)).toBeUndefined(); // room 300 − 30 − 200 = 70
    expect(book.admit('k', 70)).toBeDefined();
    expect(new Set([a, b, c].map((x) => x.reservationId)).size).toBe(3);
  });

  it('ends a lease once it stopped admitting (time, sweep) and its last call settled: one end with the summed actual cost', () => {
    const { clock, ended, book } = setup();
    book.install('k', 'acme', 'L1', 1_000);
    const a = book.admit('k', 100)!;
    const b = book.admit('k', 100)!;
    a.commit(40);
    a.commit(999); // a second settle changes nothing
    clock.advance(1_000);
    book.sweep();
    expect(book.admit('k', 100)).toBeUndefined();
    expect(ended).toEqual([]); // b still runs
    b.commit(25);
    expect(ended).toEqual([{ key: 'k', reservationId: 'L1', amountMicros: 1_000, actualMicros: 65, committedCalls: 2 }]);
    expect(book.held()).toBe(0);
  });

  it('an idle lease ends at its time with nothing committed (released, not charged)', () => {
    const { clock, ended, book } = setup();
    book.install('k', 'acme', 'L1', 1_000);
    book.admit('k', 100)!.release();
    clock.advance(999);
    book.sweep();
    expect(ended).toEqual([]);
    clock.advance(1);
    book.sweep();
    expect(ended).toEqual([{ key: 'k', reservationId: 'L1', amountMicros: 1_000, actualMicros: 0, committedCalls: 0 }]);
  });

  it('revoking a tenant stops its leases at once (other tenants keep theirs)', () => {
    const { ended, book } = setup();
    book.install('a', 'acme', 'L1', 500);
    book.install('b', 'globex', 'L2', 500);
    book.revoke('acme');
    expect(ended.map((e) => e.reservationId)).toEqual(['L1']);
    expect(book.admit('a', 100)).toBeUndefined();
    expect(book.admit('b', 100)).toBeDefined();
  });

  it('sizes leases from the last peak in flight, within the ceiling; none below two calls or during a back-off', () => {
    const { clock, book } = setup();
    expect(book.size('k', 100, Number.POSITIVE_INFINITY)).toBe(400); // first lease: four calls
    expect(book.size('k', 100, 250)).toBe(250);
    expect(book.size('k', 100, 199)).toBeUndefined(); // a lease for one call saves nothing
    book.install('k', 'acme', 'L1', 400);
    const calls = Array.from({ length: 4 }, () => book.admit('k', 100)!);
    calls.forEach((c) => c.commit(100));
    clock.advance(1_000);
    book.sweep();
    expect(book.size('k', 100, Number.POSITIVE_INFINITY)).toBe(800); // peak 400 in flight: twice that
    expect(book.size('k', 1, Number.POSITIVE_INFINITY)).toBe(256); // at most 256 calls
    book.backOff('k');
    expect(book.size('k', 100, Number.POSITIVE_INFINITY)).toBeUndefined();
    clock.advance(1_000);
    expect(book.size('k', 100, Number.POSITIVE_INFINITY)).toBe(800);
  });

  it('the ceiling is a share of the smallest hard cap; soft caps do not bound it', () => {
    expect(leaseCeiling([{ limitUsd: 10, hard: true }, { limitUsd: 3, hard: true }, { limitUsd: 1, hard: false }], 1)).toBe(30_000);
    expect(leaseCeiling([{ limitUsd: 1, hard: false }], 1)).toBe(Number.POSITIVE_INFINITY);
  });
});

/** A per-call budget peer that records its hops and answers Reserve with `answer`. */
function fakeInner(answer: (r: BudgetReserve) => BudgetHold) {
  const hops = { reserves: [] as number[], commits: [] as [string, number][], releases: [] as string[] };
  let n = 0;
  const inner: BudgetPeer = {
    reserve: (r) => {
      hops.reserves.push(r.amountMicros);
      const hold = answer(r);
      return Promise.resolve(hold.kind === 'granted' && !hold.reservationId ? { ...hold, reservationId: `r${++n}` } : hold);
    },
    commit: (h, micros) => void (h.kind === 'granted' && hops.commits.push([h.reservationId, micros])),
    release: (h) => void (h.kind === 'granted' && hops.releases.push(h.reservationId)),
  };
  return { inner, hops };
}

describe('leased budget peer', () => {
  const setup = (answer: (r: BudgetReserve) => BudgetHold, ceiling = Number.POSITIVE_INFINITY) => {
    const clock = new ManualClock(1_000_000);
    const { inner, hops } = fakeInner(answer);
    const peer = createLeasedBudgetPeer({ inner, clock, leaseMs: 1_000, ceilingMicros: () => ceiling, every: () => () => undefined });
    return { clock, peer, hops };
  };
  const granted = (): BudgetHold => ({ kind: 'granted', reservationId: '' });

  it("a call waits on another call's lease Reserve for at most half its own time left, then reserves for itself", async () => {
    const clock = new ManualClock(1_000_000);
    // A slow budget service: the lease's Reserve (request id '') never answers; a call's own Reserve answers at once.
    const inner: BudgetPeer = {
      reserve: (r) => (r.requestId === '' ? new Promise<BudgetHold>(() => undefined) : Promise.resolve({ kind: 'granted', reservationId: 'own' })),
      commit: () => undefined,
      release: () => undefined,
    };
    const peer = createLeasedBudgetPeer({ inner, clock, leaseMs: 1_000, ceilingMicros: () => Number.POSITIVE_INFINITY, every: () => () => undefined });
    void peer.reserve(call()); // takes the lease and waits on it
    const started = Date.now();
    const hold = await peer.reserve(call({ deadlineAt: clock.now() + 200 }));
    expect(hold).toEqual({ kind: 'granted', reservationId: 'own' });
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 10_000);

  it('many calls: one Reserve and one Commit of their summed actual cost', async () => {
    const { clock, peer, hops } = setup(granted);
    for (let i = 0; i < 20; i++) {
      const holds = await Promise.all([peer.reserve(call()), peer.reserve(call())]);
      for (const h of holds) peer.commit(h, 5, 'req');
    }
    expect(hops.reserves).toEqual([400]);
    expect(hops.commits).toEqual([]);
    clock.advance(1_000);
    peer.book.sweep();
    expect(hops.commits).toEqual([['r1', 200]]);
  });

  it('concurrent first calls wait for one lease rather than each taking one', async () => {
    const { hops, peer } = setup(granted);
    const holds = await Promise.all(Array.from({ length: 4 }, () => peer.reserve(call())));
    expect(holds.every((h) => h.kind === 'granted' && h.leased)).toBe(true);
    expect(hops.reserves).toEqual([400]);
  });

  it('near a cap the lease is refused: the call, and the next for a lease lifetime, take the per-call path and get its exact answer', async () => {
    const denial: BudgetHold = {
      kind: 'denied',
      denial: { kind: 'exceeded', subject: 'tenant:acme', description: 'd', limitMicros: 1000n, spentMicros: 900n, reservedMicros: 0n, requestedMicros: 100 },
    };
    const { clock, peer, hops } = setup((r) => (r.amountMicros > 100 ? denial : granted()));
    const first = await peer.reserve(call());
    expect(first).toMatchObject({ kind: 'granted', reservationId: 'r1' });
    expect(first.kind === 'granted' && first.leased).toBeFalsy();
    await peer.reserve(call());
    expect(hops.reserves).toEqual([400, 100, 100]);
    clock.advance(1_000);
    await peer.reserve(call());
    expect(hops.reserves).toEqual([400, 100, 100, 400, 100]);
    // The per-call path's denial reaches the caller unchanged.
    const tight = setup(() => denial);
    expect(await tight.peer.reserve(call())).toBe(denial);
  });

  it('an unreachable service gives every waiting call the per-call answer (fail closed for hard caps) and no lease', async () => {
    const down: BudgetHold = { kind: 'denied', denial: { kind: 'unreachable', cause: 'UNAVAILABLE: x' } };
    const { peer, hops } = setup(() => down);
    const holds = await Promise.all([peer.reserve(call()), peer.reserve(call())]);
    expect(holds).toEqual([down, down]);
    expect(hops.reserves).toEqual([400]);
  });

  it('a fail-open grant is not a lease: handed back, the call asks for itself', async () => {
    const { peer, hops } = setup(() => ({ kind: 'granted', reservationId: '', degraded: { kind: 'budget-store-fail-open' } }));
    const hold = await peer.reserve(call());
    expect(hold).toEqual({ kind: 'granted', reservationId: 'r2', degraded: { kind: 'budget-store-fail-open' } });
    expect(hops.releases).toEqual(['r1']);
  });

  it('a tenant whose hard cap leaves room for fewer than two calls per lease never leases', async () => {
    const { peer, hops } = setup(granted, 150);
    const hold = await peer.reserve(call());
    peer.commit(hold, 10, 'req');
    expect(hops.reserves).toEqual([100]);
    expect(hops.commits).toEqual([['r1', 10]]);
  });

  it('a waiter that does not fit the fresh lease asks for itself (never two hops of waiting); a full lease is replaced by a larger one; a revoked one is committed when its calls end', async () => {
    const { peer, hops } = setup(granted);
    const holds = await Promise.all(Array.from({ length: 5 }, () => peer.reserve(call())));
    expect(hops.reserves).toEqual([400, 100]);
    const sixth = await peer.reserve(call());
    expect(hops.reserves).toEqual([400, 100, 1000]); // twice the demand seen on the full lease (five calls)
    peer.revoke('acme');
    [...holds, sixth].forEach((h) => peer.commit(h, 50, 'req'));
    expect(hops.commits).toEqual([
      ['r1', 200],
      ['r2', 50],
      ['r3', 50],
    ]);
  });
});
