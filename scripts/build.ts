/**
 * `npm run build`: each service's entry point bundled to plain JavaScript,
 * `dist/<service>/main.js`, which is what `npm run stack` (and the stack
 * bench) run: no TypeScript compiler in the running process, so it starts
 * faster, holds less memory, and an Error's stack is not source-mapped on
 * every access. Our workspace libraries (@switchyard/*) are bundled in; every
 * npm package stays an ordinary require(), so OpenTelemetry's require hooks
 * still instrument grpc-js, ioredis, undici and http. Source maps are written
 * beside the bundle for debugging (`node --enable-source-maps`), not loaded.
 */
import { build, type Plugin } from 'esbuild';
import { resolve } from 'node:path';

const root = resolve(__dirname, '..');
export const SERVICES = ['router', 'limiter', 'breaker', 'budget', 'cache', 'jobs', 'simulator'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Where `npm run build` puts a service's entry point. */
export function builtEntry(service: ServiceName): string {
  return resolve(root, 'dist', service, 'main.js');
}

/** npm packages are required at run time; only our own workspace code is bundled. */
const npmPackagesExternal: Plugin = {
  name: 'npm-packages-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@switchyard/') ? undefined : { path: args.path, external: true }));
  },
};

export async function buildServices(services: readonly ServiceName[] = SERVICES): Promise<void> {
  await Promise.all(
    services.map((service) =>
      build({
        entryPoints: [resolve(root, 'services', service, 'src', 'main.ts')],
        outfile: builtEntry(service),
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        sourcemap: 'linked',
        logLevel: 'warning',
        plugins: [npmPackagesExternal],
      }),
    ),
  );
}

if (require.main === module) {
  const started = Date.now();
  buildServices().then(
    () => console.log(`built ${SERVICES.length} services to dist/ in ${Date.now() - started} ms`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
