import { performance } from 'node:perf_hooks';
import { createRedisClient } from '@switchyard/redis';
import { sleep } from '@switchyard/util';
import { type Cluster, type LimiterClient, depKey, envSeconds, gatewayYaml, percentile, startCluster } from './cluster';

/**
 * Concurrency wake-ups, measured: one deployment with concurrency 4, 16
 * closed-loop callers (each acquires with a long max_wait_ms, holds its slot a
 * random 10–50 ms, settles, and asks again at once), spread over two limiter
 * replicas, each reservation settled on the other replica than the one that
 * granted it (so every wake-up crosses replicas through NATS). Once with
 * LIMITER_CONCURRENCY_WAKEUP=0 (waiters poll every 50 ms), once with the
 * default wake-up, each on its own pair of replicas and deployment.
 *
 * Figures, over the part of the run where the line is full:
 * - utilisation: slot-held time ÷ (4 × elapsed); a slot is held from the grant's
 *   answer to the settle's answer (client clock);
 * - gap: from a settle's answer to the grant that took the freed slot (the
 *   i-th settle frees the slot of the (4 + i)-th grant; a negative gap — the
 *   grant's answer overtook the settle's — counts as 0).
 * WAKEUP_SECONDS sets the length of each run.
 */
const SECONDS = envSeconds('WAKEUP_SECONDS', 3);
const SLOTS = 4;
const CALLERS = 16;
const HOLD_MS = [10, 50] as const;
/** The first part of a run, before the line is full, is not measured. */
const WARMUP_MS = 300;

interface RunFigures {
  utilisation: number;
  grants: number;
  gapMs: { p50: number; p90: number; p99: number; max: number };
  grantsPerCaller: { min: number; max: number };
  scriptCallsPerGrant: number;
}

describe('concurrency wake-ups: a slot freed by Settle is taken at once, across replicas', () => {
  let cluster: Cluster;
  let polled: LimiterClient[];
  let woken: LimiterClient[];
  beforeAll(async () => {
    const slots = `{ concurrency: ${SLOTS} }`;
    cluster = await startCluster(gatewayYaml({ polled: slots, woken: slots }), 0);
    polled = [await cluster.add({}, { LIMITER_CONCURRENCY_WAKEUP: '0' }), await cluster.add({}, { LIMITER_CONCURRENCY_WAKEUP: '0' })];
    woken = [await cluster.add(), await cluster.add()];
    // Warm every channel and the script cache.
    for (const c of [...polled, ...woken]) {
      const r = await c.acquire({ keys: [depKey('polled')] });
      await c.settle({ reservationId: r.reservationId, actualTokens: 0 });
    }
  }, 30_000);
  afterAll(() => cluster?.stop());

  async function run(clients: LimiterClient[], deployment: string): Promise<RunFigures> {
    const redis = createRedisClient({ url: cluster.redis.url, name: 'wakeup-test' });
    await redis.config('RESETSTAT');
    const started = performance.now();
    const end = started + SECONDS * 1_000;
    const holds: Array<{ from: number; to: number }> = [];
    const perCaller: number[] = [];
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, caller) => {
        perCaller[caller] = 0;
        while (performance.now() < end) {
          const r = await clients[caller % 2]!.acquire({ keys: [depKey(deployment)], maxWaitMs: 20_000 });
          if (!r.granted) throw new Error(`caller ${caller} was denied: ${JSON.stringify(r)}`);
          const from = performance.now();
          await sleep(HOLD_MS[0] + Math.random() * (HOLD_MS[1] - HOLD_MS[0]));
          await clients[(caller + 1) % 2]!.settle({ reservationId: r.reservationId, actualTokens: 0 });
          const to = performance.now();
          holds.push({ from, to });
          if (from >= started + WARMUP_MS && from < end) perCaller[caller]!++;
        }
      }),
    );
    const stats = String(await redis.info('commandstats'));
    await redis.quit();
    const scriptCalls = [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);

    // The line is full from the warm-up until `end` (callers ask again at once).
    const windowFrom = started + WARMUP_MS;
    const held = holds.reduce((sum, h) => sum + Math.max(0, Math.min(h.to, end) - Math.max(h.from, windowFrom)), 0);
    const grants = holds.map((h) => h.from).sort((a, b) => a - b);
    const frees = holds.map((h) => h.to).sort((a, b) => a - b);
    const gaps: number[] = [];
    frees.forEach((free, i) => {
      const next = grants[SLOTS + i];
      if (next !== undefined && free >= windowFrom && free < end) gaps.push(Math.max(0, next - free));
    });
    const round = (x: number) => Math.round(x * 10) / 10;
    return {
      utilisation: Math.round((held / (SLOTS * (end - windowFrom))) * 1000) / 1000,
      grants: holds.length,
      gapMs: { p50: round(percentile(gaps, 50)), p90: round(percentile(gaps, 90)), p99: round(percentile(gaps, 99)), max: round(Math.max(...gaps)) },
      grantsPerCaller: { min: Math.min(...perCaller), max: Math.max(...perCaller) },
      scriptCallsPerGrant: Math.round((scriptCalls / holds.length) * 10) / 10,
    };
  }

  it(`keeps the slots busy with wake-ups, where polling alone leaves them idle (${SECONDS} s each)`, async () => {
    const poll = await run(polled, 'polled');
    const wake = await run(woken, 'woken');
    console.log(`wake-up: ${JSON.stringify({ seconds: SECONDS, slots: SLOTS, callers: CALLERS, holdMs: HOLD_MS, poll, wake })}`);
    // Polling alone: a freed slot waits for the head waiter's next 50 ms poll
    // (measured 0.56–0.68, gap p50 28–40 ms); with wake-ups it is asked for
    // within a few round trips (0.84–0.92, gap p50 2–5 ms). The bounds leave
    // room for a loaded 2-core runner: the worst runs seen were 0.838 against
    // 0.72 (load average 9, other suites beside it) and, slowed further by
    // --detectOpenHandles, 0.859 against 0.60 with gap p50 14 against 35 ms.
    expect(wake.utilisation).toBeGreaterThanOrEqual(0.8);
    expect(wake.utilisation).toBeGreaterThan(poll.utilisation);
    expect(wake.gapMs.p50).toBeLessThan(poll.gapMs.p50);
    // The queue still decides the order: one tenant's callers are served in
    // arrival order, each once per round (the window's two edges may each cut one turn).
    for (const figures of [poll, wake]) expect(figures.grantsPerCaller.max - figures.grantsPerCaller.min).toBeLessThanOrEqual(3);
  }, SECONDS * 2_000 + 60_000);
});
