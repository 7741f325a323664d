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
 * Every service exports its spans as the OpenTelemetry SDK reads this
 * environment (OTEL_*); the stack prints where, and how a trace id opens in Jaeger.
 *
 * The services run as built JavaScript (`npm run build`, dist/<service>/main.js,
 * which `npm run stack` runs first), not through tsx.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { leaveSignalsToCaller, spawnProcess, spawnSimulator, type SpawnedProcess } from '@switchyard/testing';
import { builtEntry, builtNodeArgs } from './build';
import { describeTraceDestination, jaegerHint, sdkTraceDestination } from './trace-destination';

const root = resolve(__dirname, '..');
const env = process.env;
const natsUrl = env.NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const configPath = env.SWITCHYARD_CONFIG ?? resolve(root, 'deploy/config/switchyard.yaml');
const host = '127.0.0.1';
const internalToken = env.SWITCHYARD_INTERNAL_TOKEN || randomBytes(32).toString('hex');
const operatorToken = env.SWITCHYARD_OPERATOR_TOKEN || randomBytes(32).toString('hex');
const jobsKeySecret = env.JOBS_KEY_SECRET || randomBytes(32).toString('hex');

/** Every line a service prints, shown prefixed with its name (`limiter | {...}`), so one terminal tells them apart. */
function prefixed(name: string): (line: string) => void {
  return (line) => console.log(`${name.padEnd(7)} | ${line}`);
}

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
  // Each process its own /metrics port (the services' defaults; deploy/prometheus/prometheus.yml scrapes these).
  for (const [name, fallback, metricsFallback] of [
    ['limiter', 50052, 9465],
    ['breaker', 50053, 9466],
    ['budget', 50054, 9467],
    ['cache', 50055, 9468],
  ] as const) {
    const NAME = name.toUpperCase();
    const proc = await spawnProcess({
      entry: builtEntry(name),
      nodeArgs: builtNodeArgs(name),
      onLine: prefixed(name),
      env: {
        ...common,
        SWITCHYARD_OPERATOR_TOKEN: operatorToken,
        GRPC_PORT: port(`${NAME}_PORT`, fallback),
        METRICS_PORT: port(`${NAME}_METRICS_PORT`, metricsFallback),
      },
      readyTimeoutMs: 60_000,
    });
    started.push({ name, proc });
    peers[`${NAME}_ADDR`] = `${host}:${proc.port}`;
    console.log(`${name.padEnd(11)} ${host}:${proc.port}  metrics http://${host}:${proc.metricsPort}/metrics`);
  }
  const router = await spawnProcess({
    entry: builtEntry('router'),
      nodeArgs: builtNodeArgs('router'),
    onLine: prefixed('router'),
    // The router holds the internal token only: a leaked router credential must not be an operator's.
    env: {
      ...common,
      ...peers,
      SWITCHYARD_OPERATOR_TOKEN: undefined,
      GRPC_PORT: port('ROUTER_PORT', 50051),
      METRICS_PORT: port('ROUTER_METRICS_PORT', 9464),
      HTTP_PORT: port('HTTP_PORT', 8080),
    },
    readyTimeoutMs: 60_000,
  });
  started.push({ name: 'router', proc: router });
  console.log(`router      ${host}:${router.port}  metrics http://${host}:${router.metricsPort}/metrics  HTTP edge (OpenAI/Anthropic-compatible) http://${host}:${port('HTTP_PORT', 8080)}`);
  const jobs = await spawnProcess({
    entry: builtEntry('jobs'),
      nodeArgs: builtNodeArgs('jobs'),
    onLine: prefixed('jobs'),
    // Public like the router: callers' API keys, no internal or operator token.
    env: {
      ...common,
      SWITCHYARD_INTERNAL_TOKEN: undefined,
      SWITCHYARD_OPERATOR_TOKEN: undefined,
      ROUTER_ADDR: `${host}:${router.port}`,
      JOBS_KEY_SECRET: jobsKeySecret,
      GRPC_PORT: port('JOBS_PORT', 50056),
      METRICS_PORT: port('JOBS_METRICS_PORT', 9469),
    },
    readyTimeoutMs: 60_000,
  });
  started.push({ name: 'jobs', proc: jobs });
  console.log(`jobs        ${host}:${jobs.port}  metrics http://${host}:${jobs.metricsPort}/metrics`);
  console.log(`\nSwitchyard is up. Call switchyard.router.v1.RouterService at ${host}:${router.port}`);
  console.log(`(or queue calls with switchyard.jobs.v1.JobsService at ${host}:${jobs.port})`);
  console.log('with metadata x-api-key: sk-switchyard-demo (tenant acme). Ctrl-C stops everything.');
  // The services inherit this environment, so their SDKs export where this says.
  const traces = sdkTraceDestination(env);
  console.log(`Traces from every service: ${describeTraceDestination(traces)}`);
  const hint = jaegerHint(env, traces);
  if (hint) console.log(`A trace id (trace_id in the log lines, x-switchyard-trace-id on answers): ${hint}`);
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
