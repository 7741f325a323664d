import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { pidOfServer, startNats, startRedis, spawnProcess, type ServerHandle, type SpawnedProcess } from '@switchyard/testing';
import { builtEntry, builtNodeArgs } from '../../scripts/build';

const root = resolve(__dirname, '../..');

/** The bench tenant's API key. */
export const BENCH_KEY = 'sk-bench';

export type Svc = 'router' | 'limiter' | 'breaker' | 'budget' | 'cache';

/**
 * One OpenAI deployment of the benches and its route of the same name (not
 * cacheable), on `upstream`: limits far above any load, a price so budgets
 * are checked. `extra`: more YAML lines for the deployment, each starting
 * with a newline and four spaces.
 */
export function benchDeploymentYaml(name: string, upstream: string, extra = ''): { deployment: string; route: string } {
  return {
    deployment: `
  ${name}:
    provider: openai
    baseUrl: ${upstream}/v1
    model: bench-m
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 1000000000, tpm: 1000000000000 }
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }${extra}`,
    route: `
  ${name}: { cacheable: false, candidates: [{ deployment: ${name} }] }`,
  };
}

/**
 * The gateway config of the benches: deployment and route `bench` on the
 * mock upstream (benchDeploymentYaml), tenant `bench` with a $1,000 hard day
 * cap; `more` adds deployments and routes made the same way.
 */
export function benchGatewayYaml(upstream: string, more: { deployment: string; route: string }[] = []): string {
  const all = [benchDeploymentYaml('bench', upstream), ...more];
  return `
deployments:${all.map((d) => d.deployment).join('')}
routes:${all.map((d) => d.route).join('')}
tenants:
  bench:
    apiKeys: [{ id: bench-main, sha256: ${hashApiKey(BENCH_KEY)} }]
    limits: { rpm: 1000000000, tpm: 1000000000000 }
    budgets: [{ period: day, limitUsd: 1000, hard: true }]
`;
}

export interface StackProcessOptions {
  /** The gateway config (SWITCHYARD_CONFIG). */
  yaml: string;
  /** Built services from this directory (scripts/build.ts buildRef), instead of the checkout's build. */
  dist?: string;
  /** From sources through tsx instead of a build. */
  tsx?: boolean;
  /** Environment for every service. */
  env?: Record<string, string | undefined>;
  /** Environment for the router only, over `env`. */
  routerEnv?: Record<string, string | undefined>;
  routerNodeArgs?: string[];
  servicesNodeArgs?: string[];
}

export interface StackProcesses {
  /** The router's gRPC address. */
  address: string;
  /** Every process whose CPU and memory count, by name (the services, redis, nats). */
  pids: Record<string, number>;
  stop(): Promise<void>;
}

/**
 * The production topology as `npm run stack` runs it (scripts/stack.ts):
 * limiter, breaker, budget and cache, then the router pointed at them, each
 * its own OS process on a free port, with Redis and NATS spawned for them.
 */
export async function startStackProcesses(options: StackProcessOptions): Promise<StackProcesses> {
  const { dist, tsx = false } = options;
  const entryOf = (svc: Svc) => (tsx ? resolve(root, `services/${svc}/src/main.ts`) : dist ? resolve(dist, svc, 'main.js') : builtEntry(svc));
  const nodeArgsOf = (svc: Svc) => (tsx ? [] : builtNodeArgs(svc, dist));
  const [redis, nats] = await Promise.all([startRedis(), startNats({ jetstream: true })]);
  const handles: ServerHandle[] = [redis, nats];
  const configPath = join(mkdtempSync(join(tmpdir(), 'sy-stack-bench-')), 'switchyard.yaml');
  writeFileSync(configPath, options.yaml);
  const common = {
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    SWITCHYARD_CONFIG: configPath,
    GRPC_HOST: '127.0.0.1',
    GRPC_PORT: '0',
    OPENAI_API_KEY: 'sk-bench-upstream',
    LOG_LEVEL: 'warn',
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_SERVICE_NAME: undefined,
    SWITCHYARD_INTERNAL_TOKEN: 'bench-internal-token',
    SWITCHYARD_OPERATOR_TOKEN: 'bench-operator-token',
    ...options.env,
  };
  const procs: Partial<Record<Svc, SpawnedProcess>> = {};
  const peers: Record<string, string> = {};
  await Promise.all(
    (['limiter', 'breaker', 'budget', 'cache'] as const).map(async (svc) => {
      const p = await spawnProcess({ entry: entryOf(svc), nodeArgs: [...nodeArgsOf(svc), ...(options.servicesNodeArgs ?? [])], env: common, readyTimeoutMs: 120_000 });
      procs[svc] = p;
      peers[`${svc.toUpperCase()}_ADDR`] = `127.0.0.1:${p.port}`;
    }),
  );
  const router = await spawnProcess({
    entry: entryOf('router'),
    env: { ...common, ...peers, SWITCHYARD_OPERATOR_TOKEN: undefined, ...options.routerEnv },
    nodeArgs: [...nodeArgsOf('router'), ...(options.routerNodeArgs ?? [])],
    readyTimeoutMs: 120_000,
  });
  procs.router = router;
  const pids: Record<string, number> = Object.fromEntries(Object.entries(procs).map(([n, p]) => [n, p.pid]));
  pids.redis = pidOfServer('redis-server', redis.port);
  pids.nats = pidOfServer('nats-server', nats.port);
  return {
    address: `127.0.0.1:${router.port}`,
    pids,
    async stop() {
      for (const svc of ['router', 'cache', 'budget', 'breaker', 'limiter'] as const) await procs[svc]!.stop('SIGTERM', 10_000);
      await Promise.all(handles.map((h) => h.stop()));
    },
  };
}
