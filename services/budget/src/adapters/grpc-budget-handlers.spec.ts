import { fromBinary } from '@bufbuild/protobuf';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { hashApiKey, parseConfig } from '@switchyard/config';
import { BudgetEventSchema } from '@switchyard/contracts';
import { type CallContext, Metadata } from '@switchyard/grpc';
import { createMemoryEventBus } from '@switchyard/nats';
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
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
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
      metrics: createBudgetMetrics(provider.getMeter('test')),
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

    await reader.forceFlush();
    const all = exporter.getMetrics().flatMap((m) => m.scopeMetrics.flatMap((s) => s.metrics));
    const values = (name: string, label: string) =>
      Object.fromEntries(all.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints.map((d) => [String(d.attributes[label]), d.value])));
    expect(values('switchyard_budget_reservations', 'outcome')).toEqual({ granted: 1, denied: 1 });
    expect(values('switchyard_budget_spend_micros', 'tenant')).toEqual({ acme: 1_700_000 });
    expect(values('switchyard_budget_alerts', 'threshold')).toEqual({ '50': 1, '80': 1 });
    await provider.shutdown();
    await bus.close();
  });
});
