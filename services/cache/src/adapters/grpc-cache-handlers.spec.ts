import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { LookupStatus } from '@switchyard/contracts';
import { type CallContext, Metadata } from '@switchyard/grpc';
import { ManualClock } from '@switchyard/util';
import { createCacheMetrics } from './cache-metrics';
import { createCacheHandlers } from './grpc-cache-handlers';
import { createMemoryCacheStore } from './memory-cache-store';

const ctx: CallContext = { metadata: new Metadata(), deadline: undefined, signal: new AbortController().signal, peer: 'test', path: '/x', sendHeaders: () => {} };

describe('cache handlers metrics', () => {
  it('counts lookups by status so the hit ratio can be graphed', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const { implementation } = createCacheHandlers({
      store: createMemoryCacheStore({ clock: new ManualClock(1_000) }),
      logger: { info() {}, warn() {} },
      defaultTtlMs: 60_000,
      defaultStaleTtlMs: 0,
      maxEntryBytes: 1024,
      waitPollMs: 5,
      metrics: createCacheMetrics(provider.getMeter('test')),
    });
    const lookup = (key: string) => implementation.lookup({ tenant: 'acme', key, allowStale: false, leaseTtlMs: 0, maxWaitMs: 0 } as never, ctx);
    expect((await lookup('a')).status).toBe(LookupStatus.MISS);
    await implementation.store({ tenant: 'acme', key: 'a', response: new Uint8Array([1]), ttlMs: 0, staleTtlMs: 0, leaseId: '' } as never, ctx);
    expect((await lookup('a')).status).toBe(LookupStatus.HIT);
    expect((await lookup('a')).status).toBe(LookupStatus.HIT);
    await reader.forceFlush();
    const points = exporter
      .getMetrics()
      .flatMap((m) => m.scopeMetrics.flatMap((s) => s.metrics))
      .filter((m) => m.descriptor.name === 'switchyard_cache_lookups')
      .flatMap((m) => m.dataPoints.map((d) => [d.attributes.status, d.value]));
    expect(Object.fromEntries(points)).toEqual({ miss: 1, hit: 2 });
    await provider.shutdown();
  });
});
