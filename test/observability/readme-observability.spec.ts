import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { CATALOGUE } from './metric-names';

const readme = readFileSync(resolve(__dirname, '../../README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Observability'), readme.indexOf('\n## ', readme.indexOf('## Observability') + 5));
const alerts = (parse(readFileSync(resolve(__dirname, '../../deploy/prometheus/alerts.yaml'), 'utf8')) as { groups: { rules: { alert?: string; for?: string }[] }[] }).groups
  .flatMap((g) => g.rules)
  .filter((r) => r.alert);

describe('README "Observability"', () => {
  it('lists every metric of the catalogues with its labels', () => {
    for (const [name, { labels }] of CATALOGUE) {
      const row = section.split('\n').find((l) => l.includes(`| \`${name}\` |`));
      expect({ name, row: row !== undefined }).toEqual({ name, row: true });
      for (const label of labels) expect({ name, label, listed: row!.includes(`\`${label}\``) }).toEqual({ name, label, listed: true });
    }
  });

  it('lists every alert with its for: and source', () => {
    for (const rule of alerts) {
      const row = section.split('\n').find((l) => l.startsWith(`| \`${rule.alert}\` |`));
      expect({ alert: rule.alert, row: row !== undefined }).toEqual({ alert: rule.alert, row: true });
      expect(row).toContain(`| ${rule.for ?? 'immediately'} |`);
    }
  });
});
