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
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
export const SERVICES = ['router', 'limiter', 'breaker', 'budget', 'cache', 'jobs', 'simulator'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Where `npm run build` puts a service's entry point. */
export function builtEntry(service: ServiceName): string {
  return resolve(root, 'dist', service, 'main.js');
}

/**
 * Our workspace packages (@switchyard/*) by name → their entry file under
 * `tree`, so a tree is built from its own sources (not through the
 * node_modules links, which point at one checkout).
 */
function workspaceEntries(tree: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const dir of ['libs', 'services']) {
    for (const name of readdirSync(join(tree, dir))) {
      const manifest = join(tree, dir, name, 'package.json');
      if (!existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; main?: string };
      if (pkg.name?.startsWith('@switchyard/')) entries[pkg.name] = resolve(tree, dir, name, pkg.main ?? 'src/index.ts');
    }
  }
  return entries;
}

/** npm packages are required at run time; only our own workspace code is bundled. */
function npmPackagesExternal(tree: string): Plugin {
  const workspace = workspaceEntries(tree);
  return {
    name: 'npm-packages-external',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        const ours = workspace[args.path];
        if (ours) return { path: ours };
        if (args.path.startsWith('@switchyard/')) return { errors: [{ text: `${args.path}: no such workspace package under ${tree}` }] };
        return { path: args.path, external: true };
      });
    },
  };
}

/**
 * Builds `services` from the source tree `tree` (default this checkout) into
 * `outDir` (default its dist/). The stack bench builds an older commit's tree
 * into a directory of its own to compare it with this one, interleaved.
 */
export async function buildServices(services: readonly ServiceName[] = SERVICES, tree = root, outDir = resolve(tree, 'dist')): Promise<void> {
  const plugin = npmPackagesExternal(tree);
  await Promise.all(
    services.map((service) =>
      build({
        entryPoints: [resolve(tree, 'services', service, 'src', 'main.ts')],
        outfile: resolve(outDir, service, 'main.js'),
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        sourcemap: 'linked',
        logLevel: 'warning',
        plugins: [plugin],
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
