/**
 * `npm run stack`: the production topology on one machine. The provider
 * simulator and the five services each run as their own OS process against
 * NATS_URL and REDIS_URL (the machine's by default), wired by address exactly
 * as in deploy/. Prints the router's address; Ctrl-C stops everything, router
 * first so no call is cut off by a peer going away under it.
 *
 * The internal services authenticate their callers as in production: the
 * router's SWITCHYARD_INTERNAL_TOKEN and the operators' SWITCHYARD_OPERATOR_TOKEN
 * are taken from the environment, or generated for this run (the operator
 * token is then printed, for ForceState / ClearUnavailable / Invalidate).
 * The jobs service runs last, against the router; its JOBS_KEY_SECRET is
 * likewise taken from the environment or generated for this run.
 *
 * The services run as built JavaScript (`npm run build`, dist/<service>/main.js,
 * which `npm run stack` runs first), not through tsx.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { leaveSignalsToCaller, spawnProcess, spawnSimulator, type SpawnedProcess } from '@switchyard/testing';
import { builtEntry } from './build';

const root = resolve(__dirname, '..');
const env = process.env;
const natsUrl = env.NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const configPath = env.SWITCHYARD_CONFIG ?? resolve(root, 'deploy/config/switchyard.yaml');
const host = '127.0.0.1';
const internalToken = env.SWITCHYARD_INTERNAL_TOKEN || randomBytes(32).toString('hex');
const operatorToken = env.SWITCHYARD_OPERATOR_TOKEN || randomBytes(32).toString('hex');
const jobsKeySecret = env.JOBS_KEY_SECRET || randomBytes(32).toString('hex');

function port(name: string, fallback: number): string {
  return env[name] ?? String(fallback);
}

async function main(): Promise<void> {
  const started: { name: string; proc: SpawnedProcess }[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const { name, proc } of [...started].reverse()) {
      const exit = await proc.stop('SIGTERM', 10_000);
      console.log(`stopped ${name} (exit ${exit})`);
    }
    process.exit(code);
  };
  leaveSignalsToCaller();
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  const simulator = await spawnSimulator({ port: Number(port('SIMULATOR_PORT', 8089)) });
  started.push({ name: 'simulator', proc: simulator.process });
  console.log(`simulator   ${simulator.url}`);

  const common = {
    NATS_URL: natsUrl,
    REDIS_URL: redisUrl,
    SWITCHYARD_CONFIG: configPath,
    SIMULATOR_URL: simulator.url,
    GRPC_HOST: host,
    OPENAI_API_KEY: env.OPENAI_API_KEY ?? 'sk-simulated-openai',
    ANTHROPIC_API_KEY: env.ANTHROPIC_API_KEY ?? 'sk-ant-simulated',
    AZURE_OPENAI_API_KEY: env.AZURE_OPENAI_API_KEY ?? 'simulated-azure-key',
    OTEL_SERVICE_NAME: undefined,
    SWITCHYARD_INTERNAL_TOKEN: internalToken,
  };
  const peers: Record<string, string> = {};
  for (const [name, fallback] of [
    ['limiter', 50052],
    ['breaker', 50053],
    ['budget', 50054],
    ['cache', 50055],
  ] as const) {
    const proc = await spawnProcess({
      entry: builtEntry(name),
      env: { ...common, SWITCHYARD_OPERATOR_TOKEN: operatorToken, GRPC_PORT: port(`${name.toUpperCase()}_PORT`, fallback) },
      readyTimeoutMs: 60_000,
    });
    started.push({ name, proc });
    peers[`${name.toUpperCase()}_ADDR`] = `${host}:${proc.port}`;
    console.log(`${name.padEnd(11)} ${host}:${proc.port}`);
  }
  const router = await spawnProcess({
    entry: builtEntry('router'),
    // The router holds the internal token only: a leaked router credential must not be an operator's.
    env: { ...common, ...peers, SWITCHYARD_OPERATOR_TOKEN: undefined, GRPC_PORT: port('ROUTER_PORT', 50051) },
    readyTimeoutMs: 60_000,
  });
  started.push({ name: 'router', proc: router });
  console.log(`router      ${host}:${router.port}`);
  const jobs = await spawnProcess({
    entry: builtEntry('jobs'),
    // Public like the router: callers' API keys, no internal or operator token.
    env: {
      ...common,
      SWITCHYARD_INTERNAL_TOKEN: undefined,
      SWITCHYARD_OPERATOR_TOKEN: undefined,
      ROUTER_ADDR: `${host}:${router.port}`,
      JOBS_KEY_SECRET: jobsKeySecret,
      GRPC_PORT: port('JOBS_PORT', 50056),
    },
    readyTimeoutMs: 60_000,
  });
  started.push({ name: 'jobs', proc: jobs });
  console.log(`jobs        ${host}:${jobs.port}`);
  console.log(`\nSwitchyard is up. Call switchyard.router.v1.RouterService at ${host}:${router.port}`);
  console.log(`(or queue calls with switchyard.jobs.v1.JobsService at ${host}:${jobs.port})`);
  console.log('with metadata x-api-key: sk-switchyard-demo (tenant acme). Ctrl-C stops everything.');
  if (!env.SWITCHYARD_OPERATOR_TOKEN) {
    console.log(`Operator calls (ForceState, ClearUnavailable, Invalidate) need metadata x-switchyard-internal-token: ${operatorToken}`);
  }

  for (const { name, proc } of started) {
    void proc.exited.then((code) => {
      if (stopping) return;
      console.error(`${name} exited unexpectedly (code ${code}); last output:\n${proc.lines.slice(-20).join('\n')}`);
      void stopAll(1);
    });
  }
}

main().catch((err: Error) => {
  console.error(`stack failed to start: ${err.message}`);
  process.exit(1);
});
