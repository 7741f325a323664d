import { hashApiKey } from '@switchyard/config';
import { BreakerService, CircuitState, Role } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { sleep } from '@switchyard/util';
import { operatorMetadata, startStack, type Stack } from '../../services/router/test/stack';

/**
 * Load-shaped proofs of issue 6: full jitter spreads a herd of retries, and the
 * retry budget plus the breaker keep a total outage from multiplying load.
 * LOAD_SECONDS sets the storm's length (default 15 s, so a breaker slow to open on a
 * starved CI runner does not decide a 3 s window alone; the issue's figure is 60 s:
 * `LOAD_SECONDS=60 npx jest test/router/storm`).
 */

const KEY = 'storm-key';
const auth = { metadata: { 'x-api-key': KEY } };
const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 15);
const WARMUP_SECONDS = 5;
const RATE_PER_SECOND = Number(process.env.STORM_RATE ?? 40);

function gatewayYaml(sim: string): string {
  const dep = (provider: string, model: string) => `
    provider: ${provider}
    baseUrl: ${provider === 'openai' ? `${sim}/v1` : sim}
    model: ${model}
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }`;
  return `
deployments:
  herd: ${dep('openai', 'herd-m')}
  storm-a: ${dep('openai', 'storm-a-m')}
  storm-b: ${dep('anthropic', 'storm-b-m')}
routes:
  r-herd: { cacheable: false, candidates: [{ deployment: herd }] }
  r-storm: { cacheable: false, candidates: [{ deployment: storm-a }, { deployment: storm-b, priority: 1 }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 6, baseMs: 200, capMs: 2000 }
`;
}

const scenario = (herdOutageMs = 0) => ({
  seed: 5,
  defaults: { limits: { rpm: 10_000_000, tpm: 10_000_000_000 } },
  deployments: {
    'herd-m': herdOutageMs > 0 ? { outages: [{ from: 0, to: herdOutageMs, kind: 'server_error' }] } : {},
    'storm-a-m': { faults: { unavailable: 1 } },
    'storm-b-m': { faults: { overloaded: 1 } },
  },
});

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

describe('herds and storms (simulator, real peers)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario());
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('100 concurrent callers on a deployment that fails twice then recovers: retry send times are spread by full jitter', async () => {
    // Budget and breaker out of the way: this measures jitter alone. (Under a
    // loaded run the herd's failures could otherwise open the circuit before
    // the outage lifts; a forced state is pinned until released.)
    const breaker = createClient(BreakerService, stack.routerEnv.BREAKER_ADDR!, { defaultDeadlineMs: 5_000, defaultMetadata: operatorMetadata });
    await breaker.forceState({ deployment: 'herd', state: CircuitState.CLOSED, reason: 'jitter test: breaker out of the way' });
    breaker.close();
    const retrySends: number[] = [];
    const chosenWaits: number[] = [];
    const { client } = await stack.startRouter({ RETRY_BUDGET_PERCENT: '1000' }, {
      sleep: async (ms, signal) => {
        chosenWaits.push(ms);
        await sleep(ms, signal);
        retrySends.push(Date.now());
      },
    });
    const t0 = Date.now();
    // The deployment fails (500, no Retry-After, so backoff decides) until the
    // herd has failed about twice, then recovers: lifted 400 ms after the first
    // failure reached the simulator.
    await stack.sim.setScenario(scenario(600_000));
    const lifted = (async () => {
      while (((await stack.sim.counters())['herd-m']?.received ?? 0) === 0) await sleep(10);
      await sleep(400);
      await stack.sim.setScenario(scenario());
    })();
    const settled = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) => client.complete({ route: 'r-herd', messages: [{ role: Role.USER, content: `herd ${i}` }], params: { maxTokens: 8 } }, { ...auth, deadlineMs: 15_000 })),
    );
    await lifted;
    const answers = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(answers.length).toBeGreaterThanOrEqual(90);
    const failedPerCaller = answers.reduce((n, a) => n + a.attempts.length - 1, 0) / answers.length;
    const rel = retrySends.map((t) => t - t0).sort((a, b) => a - b);
    expect(failedPerCaller).toBeGreaterThanOrEqual(1);
    expect(rel.length).toBeGreaterThanOrEqual(100);
    // Dispersion: inter-quartile range of retry send times, and the busiest 10 ms bin.
    const iqr = quantile(rel, 0.75) - quantile(rel, 0.25);
    const bins = new Map<number, number>();
    for (const t of rel) bins.set(Math.floor(t / 10), (bins.get(Math.floor(t / 10)) ?? 0) + 1);
    const busiest = Math.max(...bins.values()) / rel.length;
    console.log(`jitter dispersion: ${failedPerCaller.toFixed(2)} failures per caller before success, ${rel.length} retries, IQR ${iqr} ms, p5-p95 ${quantile(rel, 0.05)}-${quantile(rel, 0.95)} ms, busiest 10 ms bin ${(busiest * 100).toFixed(1)} %`);
    const waits = [...chosenWaits].sort((a, b) => a - b);
    const waitIqr = quantile(waits, 0.75) - quantile(waits, 0.25);
    console.log(`jitter: retry waits chosen ${waits[0]}-${waits.at(-1)} ms, IQR ${waitIqr} ms`);
    // Without jitter every caller's retry would be the same wait (IQR 0) and the
    // sends one instant; full jitter over [0, 200) gives an IQR near 100 ms. The
    // send times also carry this process's own scheduling (the whole stack shares one event loop).
    expect(waitIqr).toBeGreaterThanOrEqual(70);
    expect(iqr).toBeGreaterThanOrEqual(70);
    expect(busiest).toBeLessThanOrEqual(0.3);
  }, 30_000);

  it(`retry storm: ${LOAD_SECONDS} s of 100 % 503 on every deployment at ${RATE_PER_SECOND} req/s — upstream attempts ÷ caller requests ≤ 1.2 after the first ${WARMUP_SECONDS} s`, async () => {
    const { client } = await stack.startRouter();
    await stack.sim.reset();
    const upstream = async () => {
      const c = await stack.sim.counters();
      return (c['storm-a-m']?.received ?? 0) + (c['storm-b-m']?.received ?? 0);
    };
    const started = Date.now();
    let sent = 0;
    let sentAtWarmup = -1;
    let upstreamAtWarmup = 0;
    const inFlight: Promise<unknown>[] = [];
    while (Date.now() - started < LOAD_SECONDS * 1000) {
      if (sentAtWarmup < 0 && Date.now() - started >= WARMUP_SECONDS * 1000) {
        sentAtWarmup = sent;
        upstreamAtWarmup = await upstream();
      }
      sent += 1;
      inFlight.push(client.complete({ route: 'r-storm', messages: [{ role: Role.USER, content: `storm ${sent}` }], params: { maxTokens: 8 } }, { ...auth, deadlineMs: 3000 }).catch(() => undefined));
      await sleep(1000 / RATE_PER_SECOND);
    }
    await Promise.all(inFlight);
    const total = await upstream();
    const ratio = (total - upstreamAtWarmup) / (sent - sentAtWarmup);
    console.log(`retry storm: ${sent} caller requests, ${total} upstream attempts in all; after ${WARMUP_SECONDS} s: ${sent - sentAtWarmup} requests, ${total - upstreamAtWarmup} attempts, ratio ${ratio.toFixed(3)}`);
    expect(sentAtWarmup).toBeGreaterThan(0);
    expect(ratio).toBeLessThanOrEqual(1.2);
  }, (LOAD_SECONDS + 30) * 1000);
});
