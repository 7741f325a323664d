/**
 * Issue 14 "done means": a real Prometheus, loaded with deploy/prometheus's
 * rules (time-scaled: 1 s scrapes, short windows and `for:`), scrapes the six
 * services (the five of a call and jobs) running as their own OS processes; a
 * short load with one provider outage, a stream, an upstream 429, a budget cap
 * reached, an idempotent replay and a job then prove through its HTTP API that
 * every metric of every catalogue is scraped, that the series the alerts and
 * the dashboard read exist with the right values, that every dashboard panel's
 * query returns data, and that the outage alert fires and resolves.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { JobsService, JobState, Role, RouterService } from '@switchyard/contracts';
import { createClient, type Client } from '@switchyard/grpc';
import {
  spawnProcess,
  spawnSimulator,
  startNats,
  startPrometheus,
  startRedis,
  type PrometheusHandle,
  type ServerHandle,
  type SimulatorHandle,
  type SpawnedProcess,
} from '@switchyard/testing';
import { CATALOGUE } from './metric-names';

const ROOT = resolve(__dirname, '../..');
const API_KEY = 'sk-obs-acme';
const auth = { metadata: { 'x-api-key': API_KEY } };
/** A tenant whose day cap one call fills past 50 %, so the next is denied. */
const THRIFTY_KEY = 'sk-obs-thrifty';
const PEERS = ['limiter', 'breaker', 'budget', 'cache'] as const;
const SERVICES = [...PEERS, 'router', 'jobs'] as const;

const gateway = `
deployments:
  obs-main:
    provider: openai
    baseUrl: \${SIMULATOR_URL}/v1
    model: obs-main-m
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 1000, tpm: 1000000 }
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  obs-backup:
    provider: anthropic
    baseUrl: \${SIMULATOR_URL}
    model: obs-backup-m
    apiKey: env:ANTHROPIC_API_KEY
    limits: { rpm: 1000, tpm: 1000000 }
    price: { inputPerMillionUsd: 3, outputPerMillionUsd: 15 }
  obs-limited:
    provider: openai
    baseUrl: \${SIMULATOR_URL}/v1
    model: obs-limited-m
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 1000, tpm: 1000000 }
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  obs-slow:
    provider: openai
    baseUrl: \${SIMULATOR_URL}/v1
    model: obs-slow-m
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 1000, tpm: 1000000 }
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
routes:
  chat:
    candidates: [{ deployment: obs-main }, { deployment: obs-backup, priority: 1 }]
  solo:
    cacheable: false
    allowStaleOnError: false
    candidates: [{ deployment: obs-main }]
  limited:
    cacheable: false
    candidates: [{ deployment: obs-limited }, { deployment: obs-backup, priority: 1 }]
  slow:
    candidates: [{ deployment: obs-slow }]
tenants:
  acme:
    apiKeys: [{ id: acme-obs, sha256: ${hashApiKey(API_KEY)} }]
    budgets: [{ period: day, limitUsd: 100 }]
  thrifty:
    apiKeys: [{ id: thrifty-obs, sha256: ${hashApiKey(THRIFTY_KEY)} }]
    budgets: [{ period: day, limitUsd: 0.0003 }]
defaults:
  retry: { maxAttempts: 2, baseMs: 10, capMs: 20 }
  breaker: { consecutiveFailures: 5, openMs: 1000 }
`;

// obs-limited always answers 429 (a short Retry-After): the limiter's cooldown counter has something to count.
const limited = { faults: { rate_limit: 1 }, retryAfterMs: 200 };
// obs-slow answers after 300 ms: identical calls arriving meanwhile wait for the first one's answer (coalesced).
const slow = { latency: { firstToken: 300 } };
const healthy = { seed: 11, defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } }, deployments: { 'obs-main-m': {}, 'obs-backup-m': {}, 'obs-limited-m': limited, 'obs-slow-m': slow } };
const outage = { ...healthy, deployments: { ...healthy.deployments, 'obs-main-m': { faults: { server_error: 1 } } } };

/** The rules, time-scaled: minutes become seconds so an incident fits a test. */
function scaledRules(): string {
  return readFileSync(join(ROOT, 'deploy/prometheus/alerts.yaml'), 'utf8')
    .replace(/\[5m\]/g, '[10s]')
    .replace(/\[1m\]/g, '[10s]')
    .replace(/\[1d\]/g, '[2m]')
    .replace(/for: \d+m/g, 'for: 2s');
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('a real Prometheus scrapes the stack and runs the rules', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  let sim: SimulatorHandle;
  let prom: PrometheusHandle;
  const procs: Partial<Record<(typeof SERVICES)[number], SpawnedProcess>> = {};
  let router: Client<typeof RouterService.method>;
  let jobs: Client<typeof JobsService.method>;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
    sim = await spawnSimulator({ scenario: healthy });
    const dir = mkdtempSync(join(tmpdir(), 'sy-obs-'));
    writeFileSync(join(dir, 'switchyard.yaml'), gateway);
    const env = {
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'),
      SIMULATOR_URL: sim.url,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      METRICS_PORT: '0',
      OPENAI_API_KEY: 'sk-sim-openai',
      ANTHROPIC_API_KEY: 'sk-sim-anthropic',
      OTEL_TRACES_EXPORTER: 'none',
      LOG_LEVEL: 'warn',
    };
    const peers = await Promise.all(
      PEERS.map(async (name) => {
        procs[name] = await spawnProcess({ entry: join(ROOT, `services/${name}/src/main.ts`), env, readyTimeoutMs: 120_000 });
        return [`${name.toUpperCase()}_ADDR`, `127.0.0.1:${procs[name]!.port}`] as const;
      }),
    );
    procs.router = await spawnProcess({ entry: join(ROOT, 'services/router/src/main.ts'), env: { ...env, ...Object.fromEntries(peers) }, readyTimeoutMs: 120_000 });
    router = createClient(RouterService, `127.0.0.1:${procs.router.port}`, { defaultDeadlineMs: 10_000 });
    procs.jobs = await spawnProcess({
      entry: join(ROOT, 'services/jobs/src/main.ts'),
      env: { ...env, ROUTER_ADDR: `127.0.0.1:${procs.router.port}`, JOBS_KEY_SECRET: 'obs-test-secret-of-at-least-32-characters', JOBS_POLL_MS: '100' },
      readyTimeoutMs: 120_000,
    });
    jobs = createClient(JobsService, `127.0.0.1:${procs.jobs.port}`, { defaultDeadlineMs: 10_000 });

    // deploy/prometheus/prometheus.yml with this run's ports, 1 s scrapes and the scaled rules.
    const scrape = SERVICES.map((name) => `  - job_name: switchyard-${name}\n    static_configs: [{ targets: ["127.0.0.1:${procs[name]!.metricsPort}"], labels: { service: ${name} } }]`).join('\n');
    writeFileSync(join(dir, 'alerts.yaml'), scaledRules());
    writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: [alerts.yaml]\nscrape_configs:\n${scrape}\n`);
    prom = await startPrometheus({ configFile: join(dir, 'prometheus.yml') });
  }, 240_000);

  afterAll(async () => {
    jobs?.close();
    await procs.jobs?.stop();
    router?.close();
    await procs.router?.stop();
    await Promise.all(PEERS.map((n) => procs[n]?.stop()));
    await Promise.all([prom?.stop(), sim?.stop(), nats?.stop(), redis?.stop()]);
  }, 60_000);

  const call = (route: string, content: string) =>
    router.complete({ route, messages: [{ role: Role.USER, content }], params: { maxTokens: 16 }, feature: 'obs' }, auth).then(
      () => 'ok' as const,
      () => 'failed' as const,
    );
  /** A burst of load: fresh prompts on both routes, plus repeats the cache answers. */
  const load = async (round: number) => {
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await call('solo', `solo ${round} ${i}`));
    for (let i = 0; i < 4; i++) results.push(await call('chat', `chat ${round} ${i}`));
    for (let i = 0; i < 4; i++) results.push(await call('chat', 'the same question'));
    return results;
  };
  const value = async (expr: string) => (await prom.query(expr))[0]?.value;
  /** A ratio over rates is NaN (0/0) until a rate has seen an increase: not yet recorded. */
  const finite = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? undefined : v);
  const firing = async (alert: string) => (await prom.alerts()).some((a) => a.labels.alertname === alert && a.state === 'firing');

  it('scrapes every process on its own METRICS_PORT', async () => {
    const targets = await eventually('every target up', async () => {
      const t = await prom.targets();
      return t.length === SERVICES.length && t.every((x) => x.health === 'up') ? t : undefined;
    });
    expect(targets.map((t) => t.job).sort()).toEqual(SERVICES.map((s) => `switchyard-${s}`).sort());
  }, 60_000);

  it('healthy load: calls, spend and the cache hit ratio are there with the right values', async () => {
    // rate() only sees increases between two scrapes of a series: the first
    // round creates the call series, and the later rounds must land after
    // Prometheus has scraped them, or a fast machine finishes all 42 calls
    // inside one scrape and every rate reads 0 (the error ratio 0/0 = NaN).
    expect(await load(0)).not.toContain('failed');
    await eventually('first round scraped', async () => ((await value('sum(switchyard_router_calls_total{grpc_status="OK"})')) ?? 0) >= 14 ? true : undefined);
    for (let round = 1; round < 3; round++) expect(await load(round)).not.toContain('failed');
    await eventually('calls scraped', async () => ((await value('sum(switchyard_router_calls_total{grpc_status="OK"})')) ?? 0) >= 42 ? true : undefined);
    expect(await value('sum(switchyard_router_calls_total{grpc_status="OK"})')).toBe(42);
    expect(await value('sum(switchyard_router_calls_total{cache_status="hit"})')).toBeGreaterThanOrEqual(11);
    expect(await value('sum(switchyard_router_cost_usd_total{tenant="acme",feature="obs"})')).toBeGreaterThan(0);
    expect(await eventually('the error ratio recorded', async () => finite(await value('switchyard:router_error_ratio:rate5m')))).toBe(0);
    expect(await firing('SwitchyardErrorRateAbove5Percent')).toBe(false);
    // The services' own series: the cache's hit ratio, the budget's spend against its cap, the limiter's utilisation, closed circuits.
    expect(await eventually('cache hit ratio', () => value('switchyard:cache_hit_ratio:rate5m'))).toBeGreaterThan(0.2);
    // Commits reach the budget after the answer (asynchronously): wait until its spend has caught up with the router's cost, or time out.
    const routerCost = (await value('sum(switchyard_router_cost_usd_total)'))!;
    const spent = await eventually('budget spend', async () => {
      const v = (await value('switchyard_budget_spent_usd{tenant="acme",cap="day"}')) ?? 0;
      return Math.abs(v - routerCost) < 5e-7 ? v : undefined;
    }).catch(() => value('switchyard_budget_spent_usd{tenant="acme",cap="day"}'));
    expect(spent).toBeCloseTo(routerCost, 6);
    expect(await value('switchyard_budget_limit_usd{tenant="acme",cap="day"}')).toBe(100);
    const rpm = await value('switchyard_limiter_utilisation_ratio{scope="deployment",key="obs-main",kind="rpm"}');
    expect(rpm).toBeGreaterThan(0);
    expect(rpm).toBeLessThanOrEqual(1);
    expect(await value('max(switchyard_breaker_circuit_state{deployment="obs-main",state="closed"})')).toBe(1);
  }, 120_000);

  it('a stream, an upstream 429, coalesced calls, a budget cap reached, a replay and a job: their series have values', async () => {
    // A stream: time to first token.
    let chunks = 0;
    for await (const msg of router.streamComplete({ route: 'solo', messages: [{ role: Role.USER, content: 'stream it' }], params: { maxTokens: 16 }, feature: 'obs' }, auth)) {
      if (msg.event.case === 'delta') chunks++;
    }
    expect(chunks).toBeGreaterThan(0);
    // An upstream 429 on obs-limited: the call falls back to obs-backup, the limiter starts a cooldown.
    expect(await call('limited', 'rate limited')).toBe('ok');
    // Three identical calls at once on a slow deployment: one asks the provider, the others get its answer.
    expect(await Promise.all([1, 2, 3].map(() => call('slow', 'one question, asked three times at once')))).toEqual(['ok', 'ok', 'ok']);
    // The same idempotency key twice: the second call replays the first answer.
    const keyed = { route: 'solo', messages: [{ role: Role.USER, content: 'once only' }], params: { maxTokens: 16 }, feature: 'obs', idempotencyKey: 'obs-replay-1' };
    const first = await router.complete(keyed, auth);
    expect((await router.complete(keyed, auth)).content).toBe(first.content);
    // thrifty's $0.0003 day cap: the first call spends past 50 % of it (an alert), the next one is refused.
    const thrifty = { metadata: { 'x-api-key': THRIFTY_KEY } };
    await router.complete({ route: 'solo', messages: [{ role: Role.USER, content: 'thrifty 1' }], params: { maxTokens: 16 } }, thrifty);
    await expect(router.complete({ route: 'solo', messages: [{ role: Role.USER, content: 'thrifty 2' }], params: { maxTokens: 16 } }, thrifty)).rejects.toThrow();
    // A job, run through the router to SUCCEEDED.
    const { job } = await jobs.submit({ request: { route: 'solo', messages: [{ role: Role.USER, content: 'a queued call' }], params: { maxTokens: 16 } } }, auth);
    expect(await eventually('the job finished', async () => ((await jobs.getJob({ jobId: job!.jobId }, auth)).job!.state === JobState.SUCCEEDED ? true : undefined))).toBe(true);

    const positive = (expr: string) => eventually(expr, async () => (((await value(expr)) ?? 0) > 0 ? true : undefined));
    await positive('sum(switchyard_router_time_to_first_token_seconds_count{deployment="obs-main"})');
    await positive('sum(switchyard_limiter_cooldowns_total{deployment="obs-limited"})');
    await positive('sum(switchyard_router_fallbacks_total{reason="RATE_LIMITED"})');
    await positive('sum(switchyard_router_idempotent_replays_total{route="solo"})');
    await positive('sum(switchyard_router_coalesced_total{route="slow"})');
    await positive('sum(switchyard_cache_lookups_total{result="coalesced"})');
    await positive('sum(switchyard_budget_denials_total{tenant="thrifty",cap="day"})');
    await positive('sum(switchyard_budget_alerts_total{tenant="thrifty",cap="day",threshold="50"})');
    await positive('sum(switchyard_jobs_submitted_total{tenant="acme",priority="batch"})');
    await positive('sum(switchyard_jobs_finished_total{tenant="acme",priority="batch",state="succeeded"})');
    await positive('sum(switchyard_jobs_duration_seconds_count{priority="batch",state="succeeded"})');
    await positive('sum(switchyard_jobs_queue_wait_seconds_count{priority="batch"})');
  }, 120_000);

  it('provider outage: error rate and failed attempts show it, and the 5 % page fires', async () => {
    await sim.setScenario(outage);
    let round = 10;
    await eventually(
      'SwitchyardErrorRateAbove5Percent firing',
      async () => {
        await load(round++);
        return (await firing('SwitchyardErrorRateAbove5Percent')) ? true : undefined;
      },
      90_000,
    );
    expect(await value('switchyard:router_error_ratio:rate5m')).toBeGreaterThan(0.05);
    expect(await value('sum(switchyard_router_attempts_total{deployment="obs-main",error_class="SERVER_ERROR"})')).toBeGreaterThan(0);
    expect(await value('sum(switchyard_router_calls_total{route="solo",grpc_status="UNAVAILABLE"})')).toBeGreaterThan(0);
    expect(await value('sum(switchyard_router_fallbacks_total)')).toBeGreaterThan(0);
    // The breaker saw the failures: obs-main's circuit opened (its transition counted) and its failure rate rose.
    expect(await eventually('obs-main opened', async () => ((await value('sum(switchyard_breaker_transitions_total{deployment="obs-main",to="open"})')) ?? 0) > 0 ? true : undefined)).toBe(true);
    expect(await value('max(switchyard_breaker_failure_rate{deployment="obs-main"})')).toBeGreaterThan(0);
  }, 120_000);

  // After the outage: circuit transitions exist only once a circuit has moved.
  it('every metric of every catalogue is scraped', async () => {
    let absent: string[] = [];
    await eventually('every catalogue metric scraped', async () => {
      absent = [];
      for (const [name, { service }] of CATALOGUE) {
        // A histogram's series are <name>_bucket/_sum/_count; the others are <name>.
        if ((await prom.query(`count({__name__=~"${name}|${name}_count", job="switchyard-${service}"})`)).length === 0) absent.push(`${service}: ${name}`);
      }
      return absent.length === 0 ? true : undefined;
    }, 15_000).catch(() => undefined);
    expect(absent).toEqual([]);
    expect(CATALOGUE.size).toBeGreaterThan(50);
  }, 60_000);

  it('every dashboard panel query returns data', async () => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/switchyard.json'), 'utf8')) as { panels: { type: string; title: string; targets?: { expr: string }[] }[] };
    const empty: string[] = [];
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      for (const { expr } of panel.targets!) if ((await prom.query(expr)).length === 0) empty.push(`${panel.title}: ${expr}`);
    }
    expect(empty).toEqual([]);
  }, 60_000);

  it('the provider back: the page resolves', async () => {
    await sim.setScenario(healthy);
    let round = 100;
    await eventually(
      'SwitchyardErrorRateAbove5Percent resolved',
      async () => {
        await load(round++);
        return (await firing('SwitchyardErrorRateAbove5Percent')) ? undefined : true;
      },
      90_000,
    );
    expect(await value('switchyard:router_error_ratio:rate5m')).toBeLessThan(0.05);
  }, 120_000);
});
