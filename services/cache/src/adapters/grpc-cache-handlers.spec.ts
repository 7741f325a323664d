import { LookupStatus } from '@switchyard/contracts';
import { type CallContext, Metadata } from '@switchyard/grpc';
import { Registry } from '@switchyard/telemetry';
import { ManualClock } from '@switchyard/util';
import { createCacheMetrics } from './cache-metrics';
import { createCacheHandlers } from './grpc-cache-handlers';
import { createMemoryCacheStore } from './memory-cache-store';

const ctx: CallContext = { metadata: new Metadata(), deadline: undefined, signal: new AbortController().signal, peer: 'test', path: '/x', sendHeaders: () => {} };

describe('cache handlers metrics', () => {
  it('counts lookups by result, stores and bytes, so the hit ratio and the savings can be graphed', async () => {
    const registry = new Registry();
    const { implementation } = createCacheHandlers({
      store: createMemoryCacheStore({ clock: new ManualClock(1_000) }),
      logger: { info() {}, warn() {} },
      defaultTtlMs: 60_000,
      defaultStaleTtlMs: 0,
      maxEntryBytes: 1024,
      waitPollMs: 5,
      metrics: createCacheMetrics(registry),
    });
    const lookup = (key: string) => implementation.lookup({ tenant: 'acme', key, allowStale: false, leaseTtlMs: 0, maxWaitMs: 0 } as never, ctx);
    expect((await lookup('a')).status).toBe(LookupStatus.MISS);
    await implementation.store({ tenant: 'acme', key: 'a', response: new Uint8Array([1]), ttlMs: 0, staleTtlMs: 0, leaseId: '' } as never, ctx);
    expect((await lookup('a')).status).toBe(LookupStatus.HIT);
    expect((await lookup('a')).status).toBe(LookupStatus.HIT);
    const text = await registry.metrics();
    expect(text).toContain('switchyard_cache_lookups_total{result="miss"} 1');
    expect(text).toContain('switchyard_cache_lookups_total{result="hit"} 2');
    expect(text).toContain('switchyard_cache_stores_total{outcome="stored"} 1');
    expect(text).toContain('switchyard_cache_stored_bytes_total 1');
    expect(text).toContain('switchyard_cache_served_bytes_total 2');
  });
});
