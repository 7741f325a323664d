import { fromBinary } from '@bufbuild/protobuf';
import { hashApiKey, parseConfig } from '@switchyard/config';
import { BudgetEventSchema } from '@switchyard/contracts';
import { type CallContext, Metadata } from '@switchyard/grpc';
import { createMemoryEventBus } from '@switchyard/nats';
import { Registry } from '@switchyard/telemetry';
import { ManualClock } from '@switchyard/util';
import { createBudgetMetrics } from './budget-metrics';
import { createBudgetHandlers } from './grpc-budget-handlers';
import { createMemoryBudgetStore } from './memory-budget-store';

const ctx: CallContext = {
  metadata: new Metadata(),
  deadline: undefined,
  signal: new AbortController().signal,
  peer: 'test',
  path: '/x',
  sendHeaders: () => {},
};
const config = parseConfig(`
deployments:
  d1: { provider: openai, baseUrl: "http://127.0.0.1:9/v1", model: m, apiKey: "env:X", price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 } }
routes:
  chat: { candidates: [{ deployment: d1 }] }
tenants:
  acme: { apiKeys: [{ id: a, sha256: "${hashApiKey('k')}" }], budgets: [{ period: day, limitUsd: 2 }] }
`);

describe('budget handlers on the memory adapters (embedded mode)', () => {
  it('counts reserve outcomes and spend once per reservation, and publishes alerts on the bus', async () => {
    const registry = new Registry();
    const bus = createMemoryEventBus();
    const seen: number[] = [];
    await bus.subscribe('switchyard.budget.acme', (m) => void seen.push(fromBinary(BudgetEventSchema, m.data).thresholdPercent));
    const { implementation } = createBudgetHandlers({
      config,
      store: createMemoryBudgetStore({ clock: new ManualClock(Date.UTC(2026, 10, 21, 8)) }),
      bus,
      logger: { info() {}, warn() {} },
      defaultTtlMs: 60_000,
      onStoreFailure: 'closed',
      metrics: createBudgetMetrics(registry),
    });
    const reserve = (amountMicros: bigint) =>
      implementation.reserve({ tenant: 'acme', amountMicros, feature: '', apiKeyId: '', ttlMs: 0, requestId: '' } as never, ctx);
    const r = await reserve(1_500_000n);
    expect(r.granted).toBe(true);
    expect((await reserve(1_000_000n)).granted).toBe(false);
    const commit = { reservationId: r.reservationId!, actualMicros: 1_700_000n } as never;
    await implementation.commit(commit, ctx);
    await implementation.commit(commit, ctx);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([50, 80]);

    const text = await registry.metrics();
    expect(text).toContain('switchyard_budget_reservations_total{tenant="acme",outcome="granted"} 1');
    expect(text).toContain('switchyard_budget_reservations_total{tenant="acme",outcome="denied"} 1');
    expect(text).toMatch(/switchyard_budget_denials_total\{tenant="acme",cap="\w+"\} 1/);
    expect(text).toContain('switchyard_budget_spend_usd_total{tenant="acme"} 1.7');
    expect(text).toMatch(/switchyard_budget_alerts_total\{tenant="acme",cap="\w+",threshold="50"\} 1/);
    expect(text).toMatch(/switchyard_budget_alerts_total\{tenant="acme",cap="\w+",threshold="80"\} 1/);
    await bus.close();
  });
});
