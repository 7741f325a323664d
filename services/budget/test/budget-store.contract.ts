import type { BudgetStore } from '../src/domain/budget-store';
import type { CapSpec } from '../src/domain/caps';
import { newReservationId } from '../src/domain/reservation-id';

export interface BudgetStoreFixture {
  store: BudgetStore;
  /** Moves the store's notion of time forward (ManualClock in memory, a TIME shift in Redis). */
  advance(ms: number): void;
}

const USD = 1_000_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let seq = 0;
/** Tests share one store instance per file; a fresh tenant per test keeps them independent. */
const freshTenant = () => `t${process.pid}-${Date.now().toString(36)}-${++seq}`;

const cap = (over: Partial<CapSpec> & Pick<CapSpec, 'period' | 'limitMicros'>): CapSpec => ({
  id: over.period,
  scope: 'tenant',
  subject: 'x',
  hard: true,
  ...over,
});

/**
 * The one behaviour suite every BudgetStore must pass (memory and Redis).
 * `factory` is called once per test.
 */
export function budgetStoreContract(name: string, factory: () => Promise<BudgetStoreFixture>): void {
  describe(`BudgetStore contract: ${name}`, () => {
    let f: BudgetStoreFixture;
    let tenant: string;
    beforeEach(async () => {
      f = await factory();
      tenant = freshTenant();
    });

    const reserve = (caps: CapSpec[], amountMicros: number, extra: { ttlMs?: number; requestId?: string } = {}) =>
      f.store.reserve({
        tenant,
        caps,
        reservationId: newReservationId(tenant),
        amountMicros,
        ttlMs: extra.ttlMs ?? 120_000,
        requestId: extra.requestId,
      });
    const usage = async (caps: CapSpec[]) => f.store.usage({ tenant, caps });

    it('grants while the hard cap has room and denies the reservation that would exceed it, naming the cap', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      expect((await reserve([day], 6 * USD)).granted).toBe(true);
      const denied = await reserve([day], 5 * USD);
      expect(denied).toMatchObject({ granted: false, cap: day, spentMicros: 0, reservedMicros: 6 * USD });
      if (denied.granted) throw new Error('unreachable');
      expect(denied.periodEndMs - denied.periodStartMs).toBe(DAY);
      expect((await reserve([day], 4 * USD)).granted).toBe(true);
    });

    it('never grants past the cap under 50 concurrent reserves (10 of 1 USD fit a 10 USD cap)', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const results = await Promise.all(Array.from({ length: 50 }, () => reserve([day], USD)));
      expect(results.filter((r) => r.granted)).toHaveLength(10);
      const [u] = await usage([day]);
      expect(u).toMatchObject({ spentMicros: 0, reservedMicros: 10 * USD });
    });

    it('is all-or-nothing across caps: a full hour cap denies without holding on the day cap', async () => {
      const hour = cap({ period: 'hour', limitMicros: 2 * USD });
      const day = cap({ period: 'day', limitMicros: 100 * USD });
      expect((await reserve([hour, day], 2 * USD)).granted).toBe(true);
      const denied = await reserve([hour, day], USD);
      expect(denied).toMatchObject({ granted: false, cap: hour });
      const [h, d] = await usage([hour, day]);
      expect(h!.reservedMicros).toBe(2 * USD);
      expect(d!.reservedMicros).toBe(2 * USD);
    });

    it('commits the actual cost and frees the rest of the estimate', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], 3 * USD);
      if (!r.granted) throw new Error('expected grant');
      const c = await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: USD });
      expect(c).toMatchObject({ found: true, returnedMicros: 2 * USD, alreadySettled: false });
      expect(await usage([day])).toMatchObject([{ spentMicros: USD, reservedMicros: 0 }]);
      expect((await reserve([day], 9 * USD)).granted).toBe(true);
      expect((await reserve([day], 1)).granted).toBe(false);
    });

    it('charges an actual cost above the estimate in full (returned is negative)', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], USD);
      if (!r.granted) throw new Error('expected grant');
      const c = await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: 4 * USD });
      expect(c.returnedMicros).toBe(-3 * USD);
      expect(await usage([day])).toMatchObject([{ spentMicros: 4 * USD, reservedMicros: 0 }]);
    });

    it('does not double-charge a repeated commit and replays the first answer', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], 2 * USD);
      if (!r.granted) throw new Error('expected grant');
      const first = await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: USD });
      const second = await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: 5 * USD });
      expect(second).toMatchObject({ found: first.found, returnedMicros: first.returnedMicros, alreadySettled: true, crossed: [] });
      expect(await usage([day])).toMatchObject([{ spentMicros: USD, reservedMicros: 0 }]);
    });

    it('charges an expired reservation at its reserved amount: the call may have run and its commit been lost', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], 4 * USD, { ttlMs: 10_000 });
      if (!r.granted) throw new Error('expected grant');
      f.advance(5_000);
      expect(await usage([day])).toMatchObject([{ spentMicros: 0, reservedMicros: 4 * USD }]);
      f.advance(5_000);
      expect(await usage([day])).toMatchObject([{ spentMicros: 4 * USD, reservedMicros: 0 }]);
      expect((await reserve([day], 6 * USD + 1)).granted).toBe(false);
      expect((await reserve([day], 6 * USD)).granted).toBe(true);
    });

    it('corrects an expired reservation to the actual cost on a late commit, once', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], 10 * USD, { ttlMs: 1_000 });
      if (!r.granted) throw new Error('expected grant');
      expect((await reserve([day], USD)).granted).toBe(false);
      f.advance(1_001);
      expect(await usage([day])).toMatchObject([{ spentMicros: 10 * USD, reservedMicros: 0 }]);
      const late = await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: 3 * USD });
      expect(late).toMatchObject({ found: false, returnedMicros: 7 * USD, alreadySettled: false });
      expect(await usage([day])).toMatchObject([{ spentMicros: 3 * USD, reservedMicros: 0 }]);
      const again = await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: 3 * USD });
      expect(again).toMatchObject({ found: false, returnedMicros: 7 * USD, alreadySettled: true });
      expect(await f.store.release({ tenant, reservationId: r.reservationId })).toEqual({ released: false, alreadySettled: true });
      expect(await usage([day])).toMatchObject([{ spentMicros: 3 * USD, reservedMicros: 0 }]);
    });

    it('charges a late commit above the reserved amount in full (returned is negative)', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], 2 * USD, { ttlMs: 1_000 });
      if (!r.granted) throw new Error('expected grant');
      f.advance(1_001);
      const late = await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: 5 * USD });
      expect(late).toMatchObject({ found: false, returnedMicros: -3 * USD });
      expect(await usage([day])).toMatchObject([{ spentMicros: 5 * USD, reservedMicros: 0 }]);
    });

    it('takes the expiry charge back on a late release, once; a commit after it charges the actual cost once', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], 4 * USD, { ttlMs: 1_000 });
      if (!r.granted) throw new Error('expected grant');
      f.advance(1_001);
      expect(await usage([day])).toMatchObject([{ spentMicros: 4 * USD }]);
      expect(await f.store.release({ tenant, reservationId: r.reservationId })).toEqual({ released: true, alreadySettled: false });
      expect(await usage([day])).toMatchObject([{ spentMicros: 0, reservedMicros: 0 }]);
      expect(await f.store.release({ tenant, reservationId: r.reservationId })).toEqual({ released: false, alreadySettled: true });
      expect(await usage([day])).toMatchObject([{ spentMicros: 0, reservedMicros: 0 }]);
      // Spend is never lost: a cost reported after the release is charged, and only once.
      await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: USD });
      await f.store.commit({ tenant, caps: [day], reservationId: r.reservationId, actualMicros: USD });
      expect(await usage([day])).toMatchObject([{ spentMicros: USD, reservedMicros: 0 }]);
    });

    it('charges nothing at expiry for a reservation already committed or released', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const a = await reserve([day], 4 * USD, { ttlMs: 1_000 });
      const b = await reserve([day], 4 * USD, { ttlMs: 1_000 });
      if (!a.granted || !b.granted) throw new Error('expected grants');
      await f.store.commit({ tenant, caps: [day], reservationId: a.reservationId, actualMicros: USD });
      await f.store.release({ tenant, reservationId: b.reservationId });
      f.advance(5_000);
      expect(await usage([day])).toMatchObject([{ spentMicros: USD, reservedMicros: 0 }]);
    });

    it('releases once: the second release and unknown ids report nothing released', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const r = await reserve([day], 4 * USD);
      if (!r.granted) throw new Error('expected grant');
      expect(await f.store.release({ tenant, reservationId: r.reservationId })).toEqual({ released: true, alreadySettled: false });
      expect(await f.store.release({ tenant, reservationId: r.reservationId })).toEqual({ released: false, alreadySettled: true });
      expect(await f.store.release({ tenant, reservationId: newReservationId(tenant) })).toEqual({
        released: false,
        alreadySettled: false,
      });
      expect(await usage([day])).toMatchObject([{ spentMicros: 0, reservedMicros: 0 }]);
    });

    it('charges a commit of an unknown reservation once (spend is never lost)', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const id = newReservationId(tenant);
      const c = await f.store.commit({ tenant, caps: [day], reservationId: id, actualMicros: 2 * USD });
      expect(c).toMatchObject({ found: false, returnedMicros: -2 * USD });
      await f.store.commit({ tenant, caps: [day], reservationId: id, actualMicros: 2 * USD });
      expect(await usage([day])).toMatchObject([{ spentMicros: 2 * USD }]);
    });

    it('returns the live reservation for a repeated request id instead of holding twice', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD });
      const a = await reserve([day], 3 * USD, { requestId: 'req-1' });
      const b = await reserve([day], 3 * USD, { requestId: 'req-1' });
      expect(a.granted && b.granted).toBe(true);
      if (!a.granted || !b.granted) throw new Error('expected grants');
      expect(b).toEqual({ granted: true, reservationId: a.reservationId, existing: true });
      expect(await usage([day])).toMatchObject([{ reservedMicros: 3 * USD }]);
    });

    it('lets soft caps overspend but still reports their thresholds', async () => {
      const soft = cap({ period: 'day', limitMicros: USD, hard: false });
      const r = await reserve([soft], 5 * USD);
      expect(r.granted).toBe(true);
      if (!r.granted) throw new Error('expected grant');
      const c = await f.store.commit({ tenant, caps: [soft], reservationId: r.reservationId, actualMicros: 2 * USD });
      expect(c.crossed.map((x) => x.thresholdPercent)).toEqual([50, 80, 100]);
    });

    it('raises each alert threshold once per period with a rising epoch, and again in the next period', async () => {
      const day = cap({ period: 'day', limitMicros: 10 * USD, hard: false });
      const spend = async (micros: number) =>
        (await f.store.commit({ tenant, caps: [day], reservationId: newReservationId(tenant), actualMicros: micros })).crossed;
      const a = await spend(5.5 * USD);
      expect(a.map((x) => [x.thresholdPercent, x.epoch, x.spentMicros])).toEqual([[50, 1, 5.5 * USD]]);
      expect(await spend(0.5 * USD)).toEqual([]);
      expect((await spend(4 * USD)).map((x) => [x.thresholdPercent, x.epoch])).toEqual([
        [80, 2],
        [100, 3],
      ]);
      expect(await spend(USD)).toEqual([]);
      f.advance(DAY);
      expect((await spend(6 * USD)).map((x) => [x.thresholdPercent, x.epoch])).toEqual([[50, 1]]);
    });

    it('starts every period from zero: spend and holds stay in the period they happened', async () => {
      const hour = cap({ period: 'hour', limitMicros: 5 * USD });
      const month = cap({ period: 'month', limitMicros: 100 * USD });
      const r = await reserve([hour, month], 2 * USD);
      if (!r.granted) throw new Error('expected grant');
      await f.store.commit({ tenant, caps: [hour, month], reservationId: r.reservationId, actualMicros: 5 * USD });
      expect((await reserve([hour, month], USD)).granted).toBe(false);
      const before = await usage([hour, month]);
      f.advance(HOUR);
      const after = await usage([hour, month]);
      expect(after[0]).toMatchObject({ spentMicros: 0, periodStartMs: before[0]!.periodStartMs + HOUR });
      expect((await reserve([hour, month], USD)).granted).toBe(true);
      f.advance(32 * DAY);
      const later = await usage([hour, month]);
      expect(later[1]!.spentMicros).toBe(0);
      expect(later[1]!.periodStartMs).toBeGreaterThan(before[1]!.periodStartMs);
      expect(new Date(later[1]!.periodStartMs).getUTCDate()).toBe(1);
    });
  });
}
