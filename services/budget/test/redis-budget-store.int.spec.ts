import { Redis } from 'ioredis';
import { startRedis, type ServerHandle } from '@switchyard/testing';
import { createRedisBudgetStore } from '../src/adapters/redis-budget-store';
import { periodWindow } from '../src/domain/period';
import { newReservationId } from '../src/domain/reservation-id';
import { budgetStoreContract } from './budget-store.contract';

let server: ServerHandle;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

budgetStoreContract('redis', async () => {
  let shift = 0;
  return { store: createRedisBudgetStore(redis, { timeShiftMs: () => shift }), advance: (ms) => (shift += ms) };
});

describe('redis budget store on real Redis time', () => {
  it('stops holding a reservation once its short ttl passes and charges it at the reserved amount (crashed router)', async () => {
    const store = createRedisBudgetStore(redis);
    const tenant = `crash-${Date.now()}`;
    const caps = [{ id: 'day', scope: 'tenant' as const, subject: tenant, period: 'day' as const, limitMicros: 1_000_000, hard: true }];
    const held = await store.reserve({ tenant, caps, reservationId: newReservationId(tenant), amountMicros: 1_000_000, ttlMs: 200 });
    expect(held.granted).toBe(true);
    expect((await store.usage({ tenant, caps }))[0]!.reservedMicros).toBe(1_000_000);
    const deadline = Date.now() + 3_000;
    let reserved = -1;
    while (Date.now() < deadline) {
      reserved = (await store.usage({ tenant, caps }))[0]!.reservedMicros;
      if (reserved === 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(reserved).toBe(0);
    expect((await store.usage({ tenant, caps }))[0]!.spentMicros).toBe(1_000_000);
  });

  it('keeps every key of a tenant under one hash tag, with the period in the counter key', async () => {
    const store = createRedisBudgetStore(redis);
    const tenant = `keys-${Date.now()}`;
    const caps = [{ id: 'day', scope: 'tenant' as const, subject: tenant, period: 'day' as const, limitMicros: 5, hard: true }];
    await store.reserve({ tenant, caps, reservationId: newReservationId(tenant), amountMicros: 1, ttlMs: 60_000 });
    const keys = await redis.keys(`*${tenant}*`);
    expect(keys.every((k) => k.startsWith(`sy:bud:{${tenant}}:`))).toBe(true);
    const today = new Date().toISOString().slice(0, 10);
    expect(keys).toContain(`sy:bud:{${tenant}}:day:${today}`);
    expect(await redis.pttl(`sy:bud:{${tenant}}:day:${today}`)).toBeGreaterThan(0);
  });

  it('computes the same hour, day and month windows in Lua as periodWindow, across leap days and year ends', async () => {
    const tenant = `lua-${Date.now()}`;
    const instants = [Date.UTC(2028, 1, 29, 23, 30), Date.UTC(2026, 11, 31, 23, 59), Date.UTC(2100, 2, 1, 0, 0), Date.UTC(2027, 0, 1, 0, 0)];
    for (const target of instants) {
      const redisNow = Number((await redis.time())[0]) * 1000;
      // Shift Redis TIME to just after the target instant (the shift is read per script).
      const store = createRedisBudgetStore(redis, { timeShiftMs: () => target - redisNow + 1 });
      const caps = (['hour', 'day', 'month'] as const).map((period) => ({
        id: period, scope: 'tenant' as const, subject: tenant, period, limitMicros: 5, hard: true,
      }));
      const usage = await store.usage({ tenant, caps });
      for (const u of usage) {
        const w = periodWindow(u.cap.period, u.periodStartMs + 1);
        expect([u.periodStartMs, u.periodEndMs]).toEqual([w.startMs, w.endMs]);
        expect(u.periodStartMs).toBeLessThanOrEqual(target + 1);
        expect(u.periodEndMs).toBeGreaterThan(target);
      }
    }
  });
});
