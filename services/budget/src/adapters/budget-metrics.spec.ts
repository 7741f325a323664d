import { Registry } from '@switchyard/telemetry';
import { createBudgetMetrics } from './budget-metrics';

describe('budget metrics', () => {
  it('starts denials and every threshold event of each configured cap at 0', async () => {
    const registry = new Registry();
    const metrics = createBudgetMetrics(registry, [{ tenant: 'acme', cap: 'day' }]);
    metrics.alert('acme', 'day', 80);
    const text = await registry.metrics();
    expect(text).toContain('switchyard_budget_denials_total{tenant="acme",cap="day"} 0');
    expect(text).toContain('switchyard_budget_alerts_total{tenant="acme",cap="day",threshold="50"} 0');
    expect(text).toContain('switchyard_budget_alerts_total{tenant="acme",cap="day",threshold="80"} 1');
    expect(text).toContain('switchyard_budget_alerts_total{tenant="acme",cap="day",threshold="100"} 0');
  });
});
