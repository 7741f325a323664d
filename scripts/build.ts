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
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
export const SERVICES = ['router', 'limiter', 'breaker', 'budget', 'cache', 'jobs', 'simulator'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Where `npm run build` puts a service's entry point. */
export function builtEntry(service: ServiceName): string {
  return resolve(root, 'dist', service, 'main.js');
}

/**
 * V8 heap flags each service runs with (written beside its bundle as
 * `node-args`, which `npm run stack`, the stack bench and the image's CMD put
 * before the entry point). With a large machine's default heap limit V8 lets
 * the old generation grow to about four times what survived its last full
 * collection before collecting again, and grows the young generation to
 * 2 × 16 MB: under load the router held 100+ MB of dead calls in its old
 * generation, and every service 32 MB of young generation for a live heap of
 * 25–50 MB. An old-generation limit below 2 GB lowers V8's growing factor to
 * 1.3–1.5 (its heap controller), and a 2 × 4 MB young generation is still
 * several hundred calls' garbage between scavenges. Measured in the stack bench
 * (`--variant 'old384+semi4:NODE_OPTIONS=--max-old-space-size=384
 * --max-semi-space-size=4'` and the like, two runs of 2 × 5 s): router peak
 * RSS 255–283 → 166–167 MB, each internal service ~100 → 83–89 MB, CPU per call
 * unchanged within the noise (router 1.94–2.38 → 1.96–2.17 ms). The limits are
 * far above what each service keeps alive (the router about 50 MB under load,
 * the others about 25 MB) and within their Kubernetes memory limits (1 GiB,
 * 512 MiB); a router with many large requests in flight needs more
 * (ROUTER_MAX_IN_FLIGHT bounds them).
 */
export const SERVICE_NODE_ARGS: Readonly<Record<ServiceName, readonly string[]>> = {
  router: ['--max-old-space-size=384', '--max-semi-space-size=4'],
  limiter: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  breaker: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  budget: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  cache: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  // Not measured under load yet (the stack bench runs no jobs service): Node's defaults.
  jobs: [],
  simulator: [],
};

/** The node flags a build (`dist`, default this checkout's) gives `service`; none for a build from before they existed. */
export function builtNodeArgs(service: ServiceName, dist = resolve(root, 'dist')): string[] {
  const file = resolve(dist, service, 'node-args');
  return existsSync(file) ? readFileSync(file, 'utf8').split(/\s+/).filter(Boolean) : [];
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
      }).then(() => {
        mkdirSync(resolve(outDir, service), { recursive: true });
        writeFileSync(resolve(outDir, service, 'node-args'), `${SERVICE_NODE_ARGS[service].join(' ')}\n`);
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
