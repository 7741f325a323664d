/**
 * Prints the README's environment-variable tables from each service's
 * `envSpec`, the same declarations `loadConfig` validates with, so the docs
 * cannot list a variable or default the code does not have.
 * `npx tsx scripts/env-table.ts` prints them; `--write` replaces each
 * `#### <service>` table in README.md in place.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describeEnv, type EnvVar } from '@switchyard/runtime';
import { envSpec as router } from '@switchyard/router';
import { envSpec as limiter } from '@switchyard/limiter';
import { envSpec as breaker } from '@switchyard/breaker';
import { envSpec as budget } from '@switchyard/budget';
import { envSpec as cache } from '@switchyard/cache';
import { envSpec as jobs } from '@switchyard/jobs';

export const serviceEnvSpecs: Record<string, Record<string, EnvVar<unknown>>> = { router, limiter, breaker, budget, cache, jobs };

const HEADER = '| variable | default | meaning |\n|---|---|---|';

function table(spec: Record<string, EnvVar<unknown>>): string {
  return `${HEADER}\n${describeEnv(spec).join('\n')}`;
}

/** README text with every service's table regenerated (the lines from its header row to the first non-table line). */
export function rewriteReadme(readme: string): string {
  let out = readme;
  for (const [name, spec] of Object.entries(serviceEnvSpecs)) {
    const heading = `#### ${name}\n\n`;
    const start = out.indexOf(heading);
    if (start < 0) throw new Error(`README.md has no "#### ${name}" section`);
    const tableStart = start + heading.length;
    let end = tableStart;
    while (end < out.length && out[end] === '|') end = out.indexOf('\n', end) + 1 || out.length;
    out = `${out.slice(0, tableStart)}${table(spec)}\n${out.slice(end)}`;
  }
  return out;
}

if (require.main === module) {
  if (process.argv.includes('--write')) {
    const path = resolve(__dirname, '../README.md');
    writeFileSync(path, rewriteReadme(readFileSync(path, 'utf8')));
    console.log('README.md environment tables regenerated');
  } else {
    for (const [name, spec] of Object.entries(serviceEnvSpecs)) console.log(`#### ${name}\n\n${table(spec)}\n`);
  }
}
