import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyKind, LimiterService } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { type ServerHandle, startNats, startRedis } from '@switchyard/testing';
import { type LimiterConfig, type LimiterDeps, type LimiterService as RunningLimiter, loadConfig, start } from '../src';

export type LimiterClient = ReturnType<typeof createClient<typeof LimiterService.method>>;

/** A gateway YAML with the given deployments (`limits` only) and tenants (`limits` only). */
export function gatewayYaml(deployments: Record<string, string>, tenants: Record<string, string> = {}, headroom = 1): string {
  const deps = Object.entries(deployments)
    .map(
      ([id, limits]) => `  ${id}:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: ${limits}
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }`,
    )
    .join('\n');
  const ts = Object.entries(tenants)
    .map(([id, limits], i) => `  ${id}:\n    apiKeys: [{ id: ${id}-1, sha256: "${String(i % 10).repeat(64)}" }]\n    limits: ${limits}`)
    .join('\n');
  return `deployments:\n${deps}\nroutes: {}\ntenants:${ts ? `\n${ts}` : ' {}'}\ndefaults:\n  headroom: ${headroom}\n`;
}

export const depKey = (id: string) => ({ kind: KeyKind.DEPLOYMENT, id });
export const tenantKey = (id: string) => ({ kind: KeyKind.TENANT, id });

export interface Cluster {
  nats: ServerHandle;
  redis: ServerHandle;
  config: LimiterConfig;
  replicas: RunningLimiter[];
  clients: LimiterClient[];
  /** Starts one more replica (with deps, e.g. a skewed clock) and a client for it. */
  add(deps?: Partial<LimiterDeps>, env?: Record<string, string>): Promise<LimiterClient>;
  stop(): Promise<void>;
}

/** `n` limiter replicas via the production start() on one real Redis and one real NATS. */
export async function startCluster(yaml: string, n: number, env: Record<string, string> = {}): Promise<Cluster> {
  const [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
  const dir = mkdtempSync(join(tmpdir(), 'limiter-cluster-'));
  writeFileSync(join(dir, 'switchyard.yaml'), yaml);
  const configFor = (extra: Record<string, string> = {}) =>
    loadConfig({
      SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'),
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      LOG_LEVEL: 'silent',
      ...env,
      ...extra,
    });
  const config = configFor();
  const replicas: RunningLimiter[] = [];
  const clients: LimiterClient[] = [];
  const add = async (deps: Partial<LimiterDeps> = {}, extra: Record<string, string> = {}) => {
    const replica = await start(configFor(extra), deps);
    replicas.push(replica);
    const client = createClient(LimiterService, `127.0.0.1:${replica.port}`, { defaultDeadlineMs: 30_000 });
    clients.push(client);
    return client;
  };
  for (let i = 0; i < n; i++) await add();
  return {
    nats,
    redis,
    config,
    replicas,
    clients,
    add,
    async stop() {
      for (const c of clients) c.close();
      await Promise.all(replicas.map((r) => r.stop()));
      await Promise.all([nats.stop(), redis.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const envSeconds = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
