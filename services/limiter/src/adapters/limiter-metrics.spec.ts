import { Registry } from '@switchyard/telemetry';
import { createLimiterMetrics } from './limiter-metrics';

describe('limiter metrics', () => {
  it('starts cooldowns per configured deployment and fallback switches at 0, so the first 429 or Redis loss shows as a rate', async () => {
    const registry = new Registry();
    const metrics = createLimiterMetrics(registry, { deployments: ['main', 'backup'] });
    metrics.cooldown('main');
    const text = await registry.metrics();
    expect(text).toContain('switchyard_limiter_cooldowns_total{deployment="main"} 1');
    expect(text).toContain('switchyard_limiter_cooldowns_total{deployment="backup"} 0');
    expect(text).toContain('switchyard_limiter_fallback_transitions_total{to="local"} 0');
  });
});
