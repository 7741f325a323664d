/**
 * `npm run demo`: the whole gateway in one process, then a provider outage.
 *
 * Starts the provider simulator and the five services (real gRPC between them
 * on localhost), with in-memory state and events — or Redis and NATS when both
 * REDIS_URL and NATS_URL are set. Sends a stream of calls through the router,
 * fails the primary deployment part-way so the breaker opens and traffic moves
 * to the fallback, and ends with a summary table.
 */
import { demoSpans, telemetry, traceDestination } from './demo-instrumentation';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { fromBinary } from '@bufbuild/protobuf';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import {
  BudgetService,
  CacheStatus,
  CircuitState,
  HealthTransitionSchema,
  Role,
  RouterService,
  type HealthTransition,
} from '@switchyard/contracts';
import { TRACE_ROOT_ATTRIBUTE } from '@switchyard/telemetry';
import { createClient, INTERNAL_TOKEN_METADATA } from '@switchyard/grpc';
import { createMemoryBroker, createMemoryEventBus, createNatsEventBus, type EventBus } from '@switchyard/nats';
import { createMemoryHealthStore, loadConfig as breakerConfig, start as startBreaker } from '@switchyard/breaker';
import { createMemoryBudgetStore, loadConfig as budgetConfig, start as startBudget } from '@switchyard/budget';
import { createMemoryCacheStore, loadConfig as cacheConfig, start as startCache } from '@switchyard/cache';
import { createMemoryQuotaStore, loadConfig as limiterConfig, start as startLimiter } from '@switchyard/limiter';
import { loadConfig as routerConfig, start as startRouter } from '@switchyard/router';
import { createSimulator } from '@switchyard/simulator';
import { describeTraceDestination, jaegerHint } from './trace-destination';

const ROOT = resolve(__dirname, '..');
const CALLS = Number(process.env.DEMO_CALLS ?? 120);
const CONCURRENCY = 4;
const FAIL_AT = Math.floor(CALLS * 0.4);
const API_KEY = 'sk-switchyard-demo';

/**
 * Demo config = the shipped config with short retry waits so the outage phase
 * takes seconds, not minutes. Against a shared Redis/NATS, deployments get this
 * run's suffix so breaker and limiter state left by an earlier run (an open
 * circuit, spent quota) cannot change this run's story.
 */
function writeDemoConfig(suffix: string): string {
  const config = parse(readFileSync(join(ROOT, 'deploy/config/switchyard.yaml'), 'utf8'));
  config.defaults.retry = { maxAttempts: 2, baseMs: 50, capMs: 200 };
  if (suffix) {
    config.deployments = Object.fromEntries(Object.entries(config.deployments).map(([id, d]) => [`${id}${suffix}`, d]));
    for (const route of Object.values(config.routes) as { candidates: { deployment: string }[] }[]) {
      for (const c of route.candidates) c.deployment += suffix;
    }
  }
  const path = join(mkdtempSync(join(tmpdir(), 'switchyard-demo-')), 'switchyard.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

/** A live line on a terminal; every 20th update as its own line when piped (CI logs). */
function progress(line: string, done: number): void {
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
  else if (done % 20 === 0) console.log(line);
}

async function main(): Promise<void> {
  const external = Boolean(process.env.REDIS_URL && process.env.NATS_URL);
  const runId = Date.now().toString(36);
  const suffix = external ? `-${runId}` : '';
  const displayName = (deployment: string) => (suffix ? deployment.replace(suffix, '') : deployment);
  const simulator = await createSimulator({ port: 0 });
  const env: Record<string, string | undefined> = {
    ...process.env,
    GRPC_HOST: '127.0.0.1',
    GRPC_PORT: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    SWITCHYARD_CONFIG: writeDemoConfig(suffix),
    SIMULATOR_URL: simulator.url,
    OPENAI_API_KEY: 'sk-simulated-openai',
    ANTHROPIC_API_KEY: 'sk-ant-simulated',
    AZURE_OPENAI_API_KEY: 'simulated-azure-key',
  };

  // Embedded: one in-memory broker stands in for NATS; each service gets its own bus on it, as each would its own connection.
  const broker = external ? undefined : createMemoryBroker();
  const busFor = async (name: string): Promise<EventBus | undefined> =>
    broker ? createMemoryEventBus({ name, broker }) : undefined;
  const watchBus = broker ? createMemoryEventBus({ name: 'demo-watch', broker }) : await createNatsEventBus({ url: env.NATS_URL!, name: 'switchyard-demo' });
  const ours = (t: HealthTransition) => !suffix || (t.ref?.deployment ?? '').endsWith(suffix);

  const bConfig = breakerConfig(env);
  const [limiter, breaker, budget, cache] = await Promise.all([
    startLimiter(limiterConfig(env), external ? {} : { store: createMemoryQuotaStore(), bus: (await busFor('limiter'))! }),
    startBreaker(bConfig, external ? {} : { store: createMemoryHealthStore({ policy: bConfig.policy }), bus: (await busFor('breaker'))! }),
    startBudget(budgetConfig(env), external ? {} : { store: createMemoryBudgetStore(), bus: (await busFor('budget'))! }),
    startCache(cacheConfig(env), external ? {} : { store: createMemoryCacheStore() }),
  ]);
  const router = await startRouter(
    routerConfig({
      ...env,
      LIMITER_ADDR: `127.0.0.1:${limiter.port}`,
      BREAKER_ADDR: `127.0.0.1:${breaker.port}`,
      BUDGET_ADDR: `127.0.0.1:${budget.port}`,
      CACHE_ADDR: `127.0.0.1:${cache.port}`,
    }),
    external ? {} : { bus: (await busFor('router'))! },
  );

  const transitions: HealthTransition[] = [];
  const healthSub = await watchBus.subscribe('switchyard.health.>', (msg) => {
    const transition = fromBinary(HealthTransitionSchema, msg.data);
    if (ours(transition)) transitions.push(transition);
  });

  console.log(`Switchyard demo — ${external ? `Redis ${env.REDIS_URL}, NATS ${env.NATS_URL}` : 'embedded (in-memory state and events)'}`);
  console.log(`router 127.0.0.1:${router.port}  simulator ${simulator.url}`);
  console.log(`traces: ${describeTraceDestination(traceDestination)}`);
  console.log(`${CALLS} calls on route "chat" (OpenAI → Anthropic → Azure); the OpenAI deployment starts failing (503) after call ${FAIL_AT}.\n`);

  const client = createClient(RouterService, `127.0.0.1:${router.port}`, { defaultDeadlineMs: 15_000 });
  // GetBudget is a read-only view: the router's token (when the environment sets one) is enough.
  const internalToken = env.SWITCHYARD_INTERNAL_TOKEN;
  const budgetClient = createClient(BudgetService, `127.0.0.1:${budget.port}`, {
    defaultDeadlineMs: 5_000,
    ...(internalToken ? { defaultMetadata: { [INTERNAL_TOKEN_METADATA]: internalToken } } : {}),
  });
  // The day cap's spend; a shared Redis may already hold earlier runs' spend, so the table shows the difference.
  const daySpend = async () => (await budgetClient.getBudget({ tenant: 'acme' })).caps.reduce((max, c) => (c.spentMicros > max ? c.spentMicros : max), 0n);
  const spendBefore = await daySpend();
  const tracer = trace.getTracer('switchyard-demo');
  const servedBy = new Map<string, number>();
  let sent = 0;
  let done = 0;
  let ok = 0;
  let failed = 0;
  let cacheHits = 0;
  let sampleTraceId = '';
  const failures: string[] = [];

  const render = () => {
    const served = [...servedBy].map(([d, n]) => `${d} ${n}`).join(', ');
    const last = transitions.at(-1);
    const breakerState = last ? `${displayName(last.ref?.deployment ?? '')} ${CircuitState[last.to]}` : 'all CLOSED';
    progress(`[${done}/${CALLS}] ok ${ok} failed ${failed} | served: ${served} | breaker: ${breakerState}`, done);
  };

  const callOnce = async (i: number) => {
    if (i === FAIL_AT) {
      await simulator.setScenario({ seed: 1, deployments: { 'gpt-4o': { faults: { unavailable: 1 } } } });
    }
    // Every 10th call repeats an earlier question, so the cache has something to answer.
    // The run id keeps answers cached by an earlier run (shared Redis) out of this one.
    const question = `Question ${i % 10 === 9 ? i - 9 : i} of run ${runId}: what does a switchyard do?`;
    // The demo's own call is user work without a request around it: marked, it may start a trace (entryPointSampler).
    const span = tracer.startSpan('demo call', { attributes: { [TRACE_ROOT_ATTRIBUTE]: true } });
    try {
      const response = await context.with(trace.setSpan(context.active(), span), () =>
        client.complete(
          {
            route: 'chat',
            messages: [
              { role: Role.SYSTEM, content: 'Answer in one sentence.' },
              { role: Role.USER, content: question },
            ],
            params: { maxTokens: 64 },
            userId: `user-${i % 7}`,
            feature: 'demo',
          },
          { metadata: { 'x-api-key': API_KEY } },
        ),
      );
      ok++;
      if (response.cacheStatus === CacheStatus.HIT) cacheHits++;
      const who = displayName(response.servedBy?.deployment ?? 'unknown');
      servedBy.set(who, (servedBy.get(who) ?? 0) + 1);
      // With the SDK disabled the span is a no-op whose (all-zero) trace id names nothing.
      if (!sampleTraceId && i >= FAIL_AT && response.attempts.length > 1 && isSpanContextValid(span.spanContext())) sampleTraceId = span.spanContext().traceId;
    } catch (err) {
      failed++;
      failures.push((err as Error).message);
    } finally {
      span.end();
      done++;
      render();
    }
  };

  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (sent < CALLS) await callOnce(sent++);
  });
  await Promise.all(workers);
  if (process.stdout.isTTY) process.stdout.write('\n');

  // Let off-path accounting (commit, outcome events) settle before reading totals.
  await new Promise((r) => setTimeout(r, 300));
  const spentMicros = (await daySpend()) - spendBefore;
  const spans = demoSpans.getFinishedSpans().filter((s) => s.spanContext().traceId === sampleTraceId);

  const rows: [string, string][] = [
    ['calls', String(CALLS)],
    ['successes', `${ok} (${failed} failed)`],
    ...[...servedBy].sort().map(([d, n]): [string, string] => [`served by ${d}`, String(n)]),
    ['cache hits', String(cacheHits)],
    [
      'breaker transitions',
      transitions.length === 0
        ? 'none'
        : transitions.map((t) => `${displayName(t.ref?.deployment ?? '')} ${CircuitState[t.from]}→${CircuitState[t.to]} (${t.reason})`).join('; '),
    ],
    ['spend (tenant acme, this run)', `$${(Number(spentMicros) / 1e6).toFixed(6)}`],
    ['trace of one failover call', sampleTraceId ? `${sampleTraceId} (${spans.length} spans)` : 'n/a'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('\n' + rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n'));
  const hint = sampleTraceId ? jaegerHint(process.env, traceDestination, sampleTraceId) : undefined;
  if (hint) console.log(`  ${''.padEnd(width)}  ${hint}`);
  if (failures.length > 0) console.log(`\nfirst failure: ${failures[0]}`);

  client.close();
  budgetClient.close();
  healthSub.unsubscribe();
  await router.stop();
  await Promise.all([limiter.stop(), breaker.stop(), budget.stop(), cache.stop()]);
  await watchBus.close();
  await simulator.stop();
  await telemetry.shutdown();
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch(async (err: Error) => {
  console.error(`demo failed: ${err.stack ?? err.message}`);
  await telemetry.shutdown().catch(() => undefined);
  process.exit(1);
});
