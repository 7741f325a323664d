/**
 * Issue 14 "done means": a real Prometheus, loaded with deploy/prometheus's
 * rules (time-scaled: 1 s scrapes, short windows and `for:`), scrapes the five
 * services running as their own OS processes; a short load with one provider
 * outage then proves through its HTTP API that the series the alerts and the
 * dashboard read exist with the right values, that every dashboard panel's
 * query returns data, and that the outage alert fires and resolves.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { Role, RouterService } from '@switchyard/contracts';
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

const ROOT = resolve(__dirname, '../..');
const API_KEY = 'sk-obs-acme';
const auth = { metadata: { 'x-api-key': API_KEY } };
const SERVICES = ['limiter', 'breaker', 'budget', 'cache', 'router'] as const;

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
routes:
  chat:
    candidates: [{ deployment: obs-main }, { deployment: obs-backup, priority: 1 }]
  solo:
    cacheable: false
    allowStaleOnError: false
    candidates: [{ deployment: obs-main }]
tenants:
  acme:
    apiKeys: [{ id: acme-obs, sha256: ${hashApiKey(API_KEY)} }]
    budgets: [{ period: day, limitUsd: 100 }]
defaults:
  retry: { maxAttempts: 2, baseMs: 10, capMs: 20 }
  breaker: { consecutiveFailures: 5, openMs: 1000 }
`;

const healthy = { seed: 11, defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } }, deployments: { 'obs-main-m': {}, 'obs-backup-m': {} } };
const outage = { ...healthy, deployments: { 'obs-main-m': { faults: { server_error: 1 } }, 'obs-backup-m': {} } };

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
      (['limiter', 'breaker', 'budget', 'cache'] as const).map(async (name) => {
        procs[name] = await spawnProcess({ entry: join(ROOT, `services/${name}/src/main.ts`), env, readyTimeoutMs: 120_000 });
        return [`${name.toUpperCase()}_ADDR`, `127.0.0.1:${procs[name]!.port}`] as const;
      }),
    );
    procs.router = await spawnProcess({ entry: join(ROOT, 'services/router/src/main.ts'), env: { ...env, ...Object.fromEntries(peers) }, readyTimeoutMs: 120_000 });
    router = createClient(RouterService, `127.0.0.1:${procs.router.port}`, { defaultDeadlineMs: 10_000 });

    // deploy/prometheus/prometheus.yml with this run's ports, 1 s scrapes and the scaled rules.
    const scrape = SERVICES.map((name) => `  - job_name: switchyard-${name}\n    static_configs: [{ targets: ["127.0.0.1:${procs[name]!.metricsPort}"], labels: { service: ${name} } }]`).join('\n');
    writeFileSync(join(dir, 'alerts.yaml'), scaledRules());
    writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, evaluation_interval: 1s }\nrule_files: [alerts.yaml]\nscrape_configs:\n${scrape}\n`);
    prom = await startPrometheus({ configFile: join(dir, 'prometheus.yml') });
  }, 240_000);

  afterAll(async () => {
    router?.close();
    await procs.router?.stop();
    await Promise.all((['limiter', 'breaker', 'budget', 'cache'] as const).map((n) => procs[n]?.stop()));
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
  const firing = async (alert: string) => (await prom.alerts()).some((a) => a.labels.alertname === alert && a.state === 'firing');

  it('scrapes every process on its own METRICS_PORT', async () => {
    const targets = await eventually('every target up', async () => {
      const t = await prom.targets();
      return t.length === SERVICES.length && t.every((x) => x.health === 'up') ? t : undefined;
    });
    expect(targets.map((t) => t.job).sort()).toEqual(SERVICES.map((s) => `switchyard-${s}`).sort());
  }, 60_000);

  it('healthy load: calls, spend and the cache hit ratio are there with the right values', async () => {
    for (let round = 0; round < 3; round++) expect(await load(round)).not.toContain('failed');
    await eventually('calls scraped', async () => ((await value('sum(switchyard_router_calls_total{grpc_status="OK"})')) ?? 0) >= 42 ? true : undefined);
    expect(await value('sum(switchyard_router_calls_total{grpc_status="OK"})')).toBe(42);
    expect(await value('sum(switchyard_router_calls_total{cache_status="hit"})')).toBeGreaterThanOrEqual(11);
    expect(await value('sum(switchyard_router_cost_usd_total{tenant="acme",feature="obs"})')).toBeGreaterThan(0);
    expect(await eventually('the error ratio recorded', () => value('switchyard:router_error_ratio:rate5m'))).toBe(0);
    expect(await firing('SwitchyardErrorRateAbove5Percent')).toBe(false);
    // The services' own series: the cache's hit ratio, the budget's spend against its cap, the limiter's utilisation, closed circuits.
    expect(await eventually('cache hit ratio', () => value('switchyard:cache_hit_ratio:rate5m'))).toBeGreaterThan(0.2);
    const spent = await eventually('budget spend', async () => ((await value('switchyard_budget_spent_usd{tenant="acme",cap="day"}')) ?? 0) > 0 ? value('switchyard_budget_spent_usd{tenant="acme",cap="day"}') : undefined);
    expect(spent).toBeCloseTo((await value('sum(switchyard_router_cost_usd_total)'))!, 6);
    expect(await value('switchyard_budget_limit_usd{tenant="acme",cap="day"}')).toBe(100);
    const rpm = await value('switchyard_limiter_utilisation_ratio{scope="deployment",key="obs-main",kind="rpm"}');
    expect(rpm).toBeGreaterThan(0);
    expect(rpm).toBeLessThanOrEqual(1);
    expect(await value('max(switchyard_breaker_circuit_state{deployment="obs-main",state="closed"})')).toBe(1);
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
