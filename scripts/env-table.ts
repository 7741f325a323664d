/**
 * Prints the README's environment-variable tables from each service's
 * `envSpec`, the same declarations `loadConfig` validates with, so the docs
 * cannot list a variable or default the code does not have.
 * `npx tsx scripts/env-table.ts`
 */
import { describeEnv, type EnvVar } from '@switchyard/runtime';
import { envSpec as router } from '@switchyard/router';
import { envSpec as limiter } from '@switchyard/limiter';
import { envSpec as breaker } from '@switchyard/breaker';
import { envSpec as budget } from '@switchyard/budget';
import { envSpec as cache } from '@switchyard/cache';

export const serviceEnvSpecs: Record<string, Record<string, EnvVar<unknown>>> = { router, limiter, breaker, budget, cache };

if (require.main === module) {
  for (const [name, spec] of Object.entries(serviceEnvSpecs)) {
    console.log(`#### ${name}\n\n| variable | default | meaning |\n|---|---|---|\n${describeEnv(spec).join('\n')}\n`);
  }
}
