import { hashApiKey, parseConfig } from '@switchyard/config';
import { BudgetInputError } from './budget-input';
import type { BudgetStore } from './budget-store';
import { type StoreFailurePolicy, BudgetStoreUnreachable, ReservationNotFound, createBudget } from './budget';

const config = parseConfig(`
deployments: {}
routes: {}
tenants:
  hard: { apiKeys: [{ id: a, sha256: "${hashApiKey('a')}" }], budgets: [{ period: day, limitUsd: 2 }] }
  soft: { apiKeys: [{ id: b, sha256: "${hashApiKey('b')}" }], budgets: [{ period: day, limitUsd: 2, hard: false }] }
`);

const down = () => Promise.reject(new Error('ECONNREFUSED'));
const unreachable: BudgetStore = { reserve: down, commit: down, release: down, usage: down, close: async () => undefined };

function setup(onStoreFailure: StoreFailurePolicy = 'closed') {
  return createBudget({
    config,
    store: unreachable,
    alerts: { publish: async () => undefined },
    logger: { info() {}, warn() {} },
    counters: { reserve() {}, denial() {}, spend() {}, alert() {}, storeFailure() {} },
    defaultTtlMs: 60_000,
    onStoreFailure,
  });
}
const reserve = { amountMicros: 1_000n, ttlMs: 0, requestId: '' };

describe('budget with its store unreachable', () => {
  it('denies a tenant with a hard cap (fail closed), naming the cap', async () => {
    const budget = setup();
    expect(await budget.reserve({ tenant: 'hard', ...reserve })).toMatchObject({ granted: false, failClosed: true, cap: { period: 'day', hard: true } });
    expect(budget.stats).toMatchObject({ storeFailures: 1, failClosed: 1 });
  });

  it('grants a tenant with only soft caps, and any tenant under the fail-open policy', async () => {
    expect(await setup().reserve({ tenant: 'soft', ...reserve })).toMatchObject({ granted: true, failOpen: true });
    expect(await setup('open').reserve({ tenant: 'hard', ...reserve })).toMatchObject({ granted: true, failOpen: true });
  });

  it('asks for a retry of a commit rather than losing it', async () => {
    await expect(setup().commit({ reservationId: 'hard.AAAAAAAAAAAA', actualMicros: 5n })).rejects.toBeInstanceOf(BudgetStoreUnreachable);
  });
});

describe('budget input', () => {
  it.each([
    [{ tenant: '', ...reserve }, 'tenant', 'is required'],
    [{ tenant: 'nobody', ...reserve }, 'tenant', 'unknown tenant "nobody"'],
    [{ tenant: 'hard', ...reserve, amountMicros: -1n }, 'amount_micros', 'must not be negative, got -1'],
    [{ tenant: 'hard', ...reserve, ttlMs: 3_600_001 }, 'ttl_ms', 'must be at most 3600000, got 3600001'],
  ])('rejects %j naming the field', async (req, field, problem) => {
    await expect(setup().reserve(req)).rejects.toEqual(new BudgetInputError(field, problem));
  });

  it('does not know a reservation of a tenant that left the config', async () => {
    await expect(setup().release({ reservationId: 'gone.AAAAAAAAAAAA' })).rejects.toBeInstanceOf(ReservationNotFound);
    await expect(setup().release({ reservationId: 'not-an-id' })).rejects.toMatchObject({ field: 'reservation_id' });
  });
});
