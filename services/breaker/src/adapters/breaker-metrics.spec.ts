import { Registry } from '@switchyard/telemetry';
import { newCircuit } from '../domain/circuit';
import { createBreakerMetrics, transitionReason } from './breaker-metrics';

describe('breaker metrics', () => {
  it('maps free-text transition reasons to a closed set of label values', () => {
    const t = (from: 'CLOSED' | 'OPEN' | 'HALF_OPEN', to: 'CLOSED' | 'OPEN' | 'HALF_OPEN', reason: string, forced = false) => transitionReason({ from, to, reason, forced });
    expect(t('CLOSED', 'OPEN', '5 consecutive failures')).toBe('consecutive_failures');
    expect(t('CLOSED', 'OPEN', 'failure rate 60% over 20 calls in 60s')).toBe('failure_rate');
    expect(t('CLOSED', 'OPEN', 'slow-call rate 80% (over 5000ms) over 20 calls in 60s')).toBe('slow_calls');
    expect(t('OPEN', 'HALF_OPEN', 'open interval elapsed')).toBe('open_elapsed');
    expect(t('HALF_OPEN', 'CLOSED', '2 probes succeeded')).toBe('probe_succeeded');
    expect(t('HALF_OPEN', 'OPEN', '1 consecutive failures')).toBe('probe_failed');
    expect(t('CLOSED', 'OPEN', 'maintenance window', true)).toBe('operator');
    expect(t('CLOSED', 'OPEN', 'something new')).toBe('other');
  });

  it('exposes every deployment’s state as a state set read at scrape time, and counts transitions', async () => {
    const registry = new Registry();
    const metrics = createBreakerMetrics(registry);
    const open = { ...newCircuit({ deployment: 'gpt4o', provider: 'openai', model: 'gpt-4o' }, 0), state: 'OPEN' as const, openUntil: 60_000 };
    metrics.watchHealth(async () => [{ record: open, now: 1_000, state: 'OPEN' }]);
    metrics.transition({ deployment: 'gpt4o', from: 'CLOSED', to: 'OPEN', reason: '5 consecutive failures', forced: false });
    metrics.outcome('gpt4o', 'OVERLOADED', 250);
    metrics.outcome('gpt4o', 'INVALID_REQUEST', 10);
    const text = await registry.metrics();
    expect(text).toContain('switchyard_breaker_circuit_state{deployment="gpt4o",provider="openai",state="open"} 1');
    expect(text).toContain('switchyard_breaker_circuit_state{deployment="gpt4o",provider="openai",state="closed"} 0');
    expect(text).toContain('switchyard_breaker_transitions_total{deployment="gpt4o",from="closed",to="open",reason="consecutive_failures"} 1');
    expect(text).toContain('switchyard_breaker_outcomes_total{deployment="gpt4o",result="failure"} 1');
    expect(text).toContain('switchyard_breaker_outcomes_total{deployment="gpt4o",result="neutral"} 1');
    expect(text).toContain('switchyard_breaker_failure_rate{deployment="gpt4o"} 0');
  });

  it('shows the local fallback while it lasts and counts each switch', async () => {
    const registry = new Registry();
    const metrics = createBreakerMetrics(registry);
    expect(await registry.metrics()).toContain('switchyard_breaker_local_fallback 0');
    expect(await registry.metrics()).toContain('switchyard_breaker_fallback_transitions_total{to="local"} 0');
    metrics.modeChange('local');
    expect(await registry.metrics()).toContain('switchyard_breaker_local_fallback 1');
    metrics.modeChange('shared');
    const text = await registry.metrics();
    expect(text).toContain('switchyard_breaker_local_fallback 0');
    expect(text).toContain('switchyard_breaker_fallback_transitions_total{to="local"} 1');
    expect(text).toContain('switchyard_breaker_fallback_transitions_total{to="shared"} 1');
  });
});
