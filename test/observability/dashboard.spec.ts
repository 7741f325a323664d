import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { CATALOGUE, metricsIn } from './metric-names';

const root = resolve(__dirname, '../../deploy/grafana');

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(resolve(root, 'dashboards/switchyard.json'), 'utf8')) as { panels: Panel[] };
const panels = dashboard.panels.filter((p) => p.type !== 'row');
const rows = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);

describe('deploy/grafana dashboard', () => {
  it('answers the operator questions, one row each', () => {
    expect(rows).toEqual(['Is it up', 'What fails and why', 'Which provider serves', 'How close to the limits', 'What it costs', 'How much the cache saves']);
  });

  it('queries the provisioned Prometheus data source in every panel', () => {
    const { datasources } = parse(readFileSync(resolve(root, 'provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: { uid: string }[] };
    for (const panel of panels) {
      expect({ panel: panel.title, uid: panel.datasource?.uid, queries: panel.targets?.length ?? 0 }).toEqual({ panel: panel.title, uid: datasources[0]!.uid, queries: expect.any(Number) });
      expect(panel.targets!.length).toBeGreaterThan(0);
    }
  });

  it('reads only metrics the services export, with labels they have', () => {
    for (const panel of panels) {
      for (const { expr } of panel.targets!) {
        for (const name of metricsIn(expr)) {
          expect({ panel: panel.title, metric: name, defined: CATALOGUE.has(name) }).toEqual({ panel: panel.title, metric: name, defined: true });
          const labels = CATALOGUE.get(name)!.labels;
          for (const [, by] of expr.matchAll(/by \(([a-z_, ]+)\)/g)) {
            for (const label of by!.split(',').map((l) => l.trim())) if (label !== 'le' && !expr.includes('up{')) expect({ panel: panel.title, label, known: labels.includes(label) || label === 'job' }).toEqual({ panel: panel.title, label, known: true });
          }
        }
      }
    }
  });
});
