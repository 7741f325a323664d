import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { CATALOGUE, metricsIn } from './metric-names';

const dir = resolve(__dirname, '../../deploy/prometheus');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  annotations?: Record<string, string>;
}
const rules: Rule[] = (parse(readFileSync(resolve(dir, 'alerts.yaml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const alerts = rules.filter((r) => r.alert);

function promtool(...args: string[]): string {
  try {
    return execFileSync('promtool', args, { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool not found: install Debian package `prometheus` (apt-get install -y prometheus), as .ci/run does');
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

describe('deploy/prometheus alert rules', () => {
  it('pass their promtool unit tests (alerts.test.yaml: each alert fires on its incident and stays quiet otherwise)', () => {
    expect(promtool('test', 'rules', 'alerts.test.yaml')).toContain('SUCCESS');
  });

  it('and both Prometheus configs are valid and load them', () => {
    expect(promtool('check', 'config', 'prometheus.yml')).toContain('SUCCESS: 28 rules found');
    expect(promtool('check', 'config', 'prometheus.stack.yml')).toContain('SUCCESS: 28 rules found');
  });

  it('every alert names the figure its threshold comes from and is exercised by a firing unit test', () => {
    const tests = readFileSync(resolve(dir, 'alerts.test.yaml'), 'utf8');
    for (const rule of alerts) {
      expect({ alert: rule.alert, source: rule.annotations?.source ?? '' }).toEqual({ alert: rule.alert, source: expect.stringMatching(/\S{10,}/) });
      expect({ alert: rule.alert, tested: new RegExp(`alertname: ${rule.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`).test(tests) }).toEqual({ alert: rule.alert, tested: true });
    }
    expect(alerts.length).toBeGreaterThanOrEqual(15);
  });

  it('read only metrics the services export (the catalogues), with labels they have', () => {
    for (const rule of rules) {
      for (const name of metricsIn(rule.expr)) {
        expect({ rule: rule.alert ?? rule.record, metric: name, defined: CATALOGUE.has(name) }).toEqual({ rule: rule.alert ?? rule.record, metric: name, defined: true });
        for (const [, label] of rule.expr.matchAll(new RegExp(`${name}(?:_bucket)?\\{([a-z_]+)=`, 'g'))) {
          expect(CATALOGUE.get(name)!.labels).toContain(label);
        }
      }
    }
  });
});
