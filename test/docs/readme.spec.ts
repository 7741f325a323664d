import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describeEnv } from '@switchyard/runtime';
import { serviceEnvSpecs } from '../../scripts/env-table';

const readme = readFileSync(resolve(__dirname, '../../README.md'), 'utf8');

/** The section of the README under `#### <service>`, up to the next heading. */
function section(service: string): string {
  const start = readme.indexOf(`#### ${service}\n`);
  if (start < 0) return '';
  const next = readme.indexOf('\n#', start + 5);
  return readme.slice(start, next < 0 ? undefined : next);
}

describe('README', () => {
  it.each(Object.keys(serviceEnvSpecs))('documents every %s variable with its default and meaning', (service) => {
    const documented = section(service);
    const missing = describeEnv(serviceEnvSpecs[service]).filter((row) => !documented.includes(row));
    expect(missing).toEqual([]);
  });

  it('names the two commands a fresh clone needs', () => {
    const scripts = JSON.parse(readFileSync(resolve(__dirname, '../../package.json'), 'utf8')).scripts;
    expect(readme).toContain('npm run demo');
    expect(readme).toContain('npm test');
    expect(scripts.demo).toBeDefined();
    expect(scripts.test).toBeDefined();
  });
});
