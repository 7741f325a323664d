import { Registry } from '@switchyard/telemetry';
import { createRouterMetrics } from './router-metrics';

const gateway = {
  routes: { chat: {} },
  tenants: { acme: {} },
  deployments: { main: { provider: 'openai' } },
} as unknown as Parameters<typeof createRouterMetrics>[0];

const attempt = (feature: string) => ({ deployment: 'main', provider: 'openai', model: 'm', seconds: 0.1, tenant: 'acme', feature, costUsd: 0.01 });

describe('router metrics', () => {
  it('starts the series the config names at 0, so rate() and the alerts read 0 before the first event', async () => {
    const registry = new Registry();
    createRouterMetrics(gateway, registry);
    const text = await registry.metrics();
    expect(text).toContain('switchyard_router_coalesced_total{route="chat"} 0');
    expect(text).toContain('switchyard_router_idempotent_replays_total{route="chat"} 0');
    expect(text).toContain('switchyard_router_retries_total{deployment="main"} 0');
    expect(text).toContain('switchyard_router_attempts_total{deployment="main",provider="openai",error_class="none"} 0');
    expect(text).toContain('switchyard_router_cache_saved_usd_total{tenant="acme"} 0');
    expect(text).toContain('switchyard_router_fallbacks_total{reason="SERVER_ERROR"} 0');
    expect(text).toContain('switchyard_router_fallbacks_total{reason="quota"} 0');
    expect(text).toContain('switchyard_router_shed_total 0');
    expect(text).toContain('switchyard_router_in_flight_limit 0');
  });

  it('counts shed calls and reads the in-flight gate at each scrape', async () => {
    const registry = new Registry();
    const metrics = createRouterMetrics(gateway, registry);
    const gate = { inFlight: 3, limit: 32 };
    metrics.watchInFlight(gate);
    metrics.shed();
    metrics.shed();
    let text = await registry.metrics();
    expect(text).toContain('switchyard_router_shed_total 2');
    expect(text).toContain('switchyard_router_in_flight_calls 3');
    expect(text).toContain('switchyard_router_in_flight_limit 32');
    Object.assign(gate, { inFlight: 0, limit: 24 });
    text = await registry.metrics();
    expect(text).toContain('switchyard_router_in_flight_calls 0');
    expect(text).toContain('switchyard_router_in_flight_limit 24');
  });

  it('records each wait for a turn of the CPU in its histogram', async () => {
    const registry = new Registry();
    const metrics = createRouterMetrics(gateway, registry);
    metrics.turnWait(0.0002);
    metrics.turnWait(0.004);
    const text = await registry.metrics();
    expect(text).toContain('switchyard_router_turn_wait_seconds_bucket{le="0.0005"} 1');
    expect(text).toContain('switchyard_router_turn_wait_seconds_bucket{le="0.005"} 2');
    expect(text).toContain('switchyard_router_turn_wait_seconds_count 2');
  });

  it('keeps the first maxFeatures feature names and counts the rest as other', async () => {
    const registry = new Registry();
    const metrics = createRouterMetrics(gateway, registry, { maxFeatures: 2 });
    for (const f of ['a', 'b', 'c', 'd', 'a']) metrics.attempt(attempt(f));
    const text = await registry.metrics();
    expect(text).toContain('switchyard_router_cost_usd_total{tenant="acme",feature="a",deployment="main"} 0.02');
    expect(text).toContain('switchyard_router_cost_usd_total{tenant="acme",feature="b",deployment="main"} 0.01');
    expect(text).toContain('switchyard_router_cost_usd_total{tenant="acme",feature="other",deployment="main"} 0.02');
    expect(text).not.toContain('feature="c"');
  });
});
