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
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
 * before the entry point). On a large machine V8 grows every process's young
 * generation to 2 × 16 MB and lets the old generation grow to about four times
 * what survived its last full collection; an internal service keeps about
 * 25 MB alive. So the internal services run with a 2 × 4 MB young generation
 * and a 256 MB old-generation limit (which lowers V8's growing factor to
 * about 1.3): peak RSS under the stack bench 85–118 → 82–89 MB each, their CPU
 * per call (0.03–0.15 ms) unchanged within the noise in four runs.
 *
 * The router keeps Node's heap sizes: the same flags took its peak from 310 to
 * 171 MB (and `--max-old-space-size=384` alone to 197 MB) but cost it CPU per
 * call in the two runs where the unflagged router ran first (0.90 → 1.67 ms;
 * 1.11 → 1.64 ms, and 1.39 ms with the old-generation limit alone): more
 * scavenges promote more of the calls in flight, and a lower limit collects
 * them more often (`npm run bench -- stack --only switchyard --reps 3 --seconds 5
 * --variant 'old384:NODE_OPTIONS=--max-old-space-size=384' --variant
 * 'old384+semi4:NODE_OPTIONS=--max-old-space-size=384 --max-semi-space-size=4'`).
 * A limit would also risk the router itself: it holds every request in
 * flight, up to GRPC_MAX_RECEIVE_BYTES (4 MiB) each. What it runs with
 * instead is a fixed growing factor of 2 for the old generation in place of
 * V8's dynamic one (up to 4): no limit, just collected at twice what survived
 * rather than four times. Two runs of `npm run bench -- stack --only
 * switchyard --reps 3 --seconds 4 --variant
 * 'grow100:ROUTER_NODE_ARGS=--heap-growing-percent=100' …` (with the same
 * build again as a last variant): its peak 194–225 → 174–176 MB, CPU per
 * call of the stack unchanged (3.11 against 3.24/3.01 ms; 3.01 against
 * 2.94/3.05 ms), saturation the same within noise. A factor of 1.5 or 1.75
 * cut more (157–167 MB) at 6–16 % more router CPU per call.
 */
export const SERVICE_NODE_ARGS: Readonly<Record<ServiceName, readonly string[]>> = {
  router: ['--heap-growing-percent=100'],
  limiter: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  breaker: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  budget: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  cache: ['--max-old-space-size=256', '--max-semi-space-size=4'],
  // Not measured under load (the stack bench runs no jobs service): Node's defaults.
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

/**
 * `git archive` of `ref` into a temp dir (its npm packages: this checkout's),
 * `services` built there; returns its dist/. Benchmarks measure a change
 * against the commit before it this way, both built the same.
 */
export async function buildRef(ref: string, services: readonly ServiceName[]): Promise<string> {
  const tree = mkdtempSync(join(tmpdir(), 'sy-bench-ref-'));
  execSync(`git -C ${JSON.stringify(root)} archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(tree)}`, { stdio: ['ignore', 'ignore', 'inherit'] });
  symlinkSync(resolve(root, 'node_modules'), join(tree, 'node_modules'));
  await buildServices(services, tree);
  return join(tree, 'dist');
}
