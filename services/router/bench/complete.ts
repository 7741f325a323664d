/**
 * `npm run bench -- router [--seconds 5] [--rate 500] [--concurrency 64] [--stage-n 300]`
 *
 * Added latency of a Complete through the router (all four peers, Redis,
 * NATS) against a direct OpenAI SDK call to the same simulator, at a fixed
 * request rate and at saturation (closed loop), in one run. The router and its
 * peers run in this process (production start()), the simulator in its own;
 * CPU per request is this process's user+system time divided by requests, so
 * router-minus-direct is what the gateway costs. ELU is this process's event
 * loop utilisation during the row: near 1 the one loop that router, peers and
 * load generator share is saturated, and queueing, not per-call work, is what
 * the latency shows.
 *
 * The stage table then takes one call at a time (no queueing) and times the
 * critical path's pieces on their own: the provider call (direct SDK), each
 * peer hop of the fan-out and the fan-out as the router issues it (limiter
 * Acquire ∥ budget Reserve, over the router's own peer clients), the router's
 * Complete, and the provider attempt as the router itself timed it
 * (attempts[0].latency_ms, whole ms). What is left of the Complete after the
 * fan-out and the provider call is the router's own gRPC hop and work.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { KeyKind, Role } from '@switchyard/contracts';
import { createPeers } from '../src/adapters/peers';
import { SIM_KEY, startStack } from '../test/stack';
import { benchGatewayYaml, numberArg, fixedRate as runFixedRate, quantile, saturate as runSaturate, type LoadResult } from './load-driver';

const SECONDS = numberArg('--seconds', 5);
const RATE = numberArg('--rate', 500);
const CONCURRENCY = numberArg('--concurrency', 64);
const STAGE_N = numberArg('--stage-n', 300);
const KEY = 'bench-key';

const yaml = (sim: string) => benchGatewayYaml(sim, KEY);
type Result = LoadResult;
const fixedRate = (call: (i: number) => Promise<unknown>) => runFixedRate(call, { seconds: SECONDS, rate: RATE });
const saturate = (call: (i: number) => Promise<unknown>) => runSaturate(call, { seconds: SECONDS, concurrency: CONCURRENCY });

interface Stage {
  p50: number;
  p99: number;
  /** What the call itself returned as a number (a server-side timing), sorted. */
  reported: number[];
}

/**
 * p50/p99 of each call taken one at a time (no queueing), round-robin so a
 * burst of load from elsewhere on the machine hits every stage alike.
 */
async function oneAtATime<K extends string>(calls: Record<K, (i: number) => Promise<number | void>>): Promise<Record<K, Stage>> {
  const names = Object.keys(calls) as K[];
  const lat = new Map(names.map((n) => [n, [] as number[]]));
  const reported = new Map(names.map((n) => [n, [] as number[]]));
  for (let i = -20; i < STAGE_N; i++) {
    for (const name of names) {
      const start = performance.now();
      const r = await calls[name](i);
      if (i < 0) continue;
      lat.get(name)!.push(performance.now() - start);
      if (typeof r === 'number') reported.get(name)!.push(r);
    }
  }
  const out = {} as Record<K, Stage>;
  for (const name of names) {
    const s = lat.get(name)!.sort((a, b) => a - b);
    out[name] = { p50: quantile(s, 0.5), p99: quantile(s, 0.99), reported: reported.get(name)!.sort((a, b) => a - b) };
  }
  return out;
}

async function main() {
  const stack = await startStack(yaml, { seed: 1, defaults: { limits: { rpm: 100_000_000, tpm: 100_000_000_000 } }, deployments: { 'bench-m': {} } }, { LOG_LEVEL: 'silent' });
  try {
    const sdk = new OpenAI({ apiKey: SIM_KEY, baseURL: `${stack.sim.url}/v1`, maxRetries: 0 });
    const direct = (i: number) => sdk.chat.completions.create({ model: 'bench-m', messages: [{ role: 'user', content: `bench ${i}` }], max_tokens: 16 });
    const routed = (i: number) =>
      stack.client.complete({ route: 'bench', messages: [{ role: Role.USER, content: `bench ${i}` }], params: { maxTokens: 16 } }, { metadata: { 'x-api-key': KEY } });
    // The router's own peer clients, so a hop here costs what it costs the router.
    const env = stack.routerEnv;
    const peers = createPeers({ cacheAddr: env.CACHE_ADDR!, budgetAddr: env.BUDGET_ADDR!, limiterAddr: env.LIMITER_ADDR!, breakerAddr: env.BREAKER_ADDR!, peerDeadlineMs: 500, internalToken: env.SWITCHYARD_INTERNAL_TOKEN });
    // Warm both paths (connections, JIT, replicas).
    for (let i = 0; i < 200; i++) await Promise.all([direct(-i), routed(-i)]);
    // Stages first, while nothing from the loaded rows is still draining.
    // Each hop as acquireLimiter / reserveBudget send it; the reservation is
    // given back after the clock stops so nothing accumulates.
    const acquire = async () => {
      const start = performance.now();
      const res = await peers.limiter.acquire({ keys: [{ kind: KeyKind.DEPLOYMENT, id: 'bench' }, { kind: KeyKind.TENANT, id: 'bench' }], requests: 1, tokens: 32 });
      const ms = performance.now() - start;
      if (res.reservationId) await peers.limiter.settle({ reservationId: res.reservationId, cancelled: true });
      return ms;
    };
    const reserve = async () => {
      const start = performance.now();
      const res = await peers.budget.reserve({ tenant: 'bench', feature: '', apiKeyId: 'bench-main', amountMicros: 30n, requestId: randomUUID() });
      const ms = performance.now() - start;
      if (res.reservationId) await peers.budget.release({ reservationId: res.reservationId });
      return ms;
    };
    const stage = await oneAtATime({
      direct: async (i) => void (await direct(i)),
      acquire: async () => void (await acquire()),
      reserve: async () => void (await reserve()),
      fanOut: async () => void (await Promise.all([acquire(), reserve()])),
      routed: async (i) => (await routed(i)).attempts[0]?.latencyMs,
    });
    peers.close();

    const rows: [string, Result][] = [];
    rows.push([`direct SDK @ ${RATE}/s`, await fixedRate(direct)]);
    rows.push([`router     @ ${RATE}/s`, await fixedRate(routed)]);
    rows.push([`direct SDK saturated (${CONCURRENCY} conc)`, await saturate(direct)]);
    rows.push([`router     saturated (${CONCURRENCY} conc)`, await saturate(routed)]);

    console.log(`\nrouter bench: ${SECONDS} s per row, simulator zero latency, Node ${process.version}`);
    console.log('| path | requests | errors | p50 ms | p99 ms | req/s | CPU µs/req (this process) | ELU |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const [name, r] of rows) {
      console.log(`| ${name} | ${r.n} | ${r.errors} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.rps.toFixed(0)} | ${r.cpuUsPerReq.toFixed(0)} | ${r.elu.toFixed(2)} |`);
    }
    const [d, r, ds, rs] = rows.map(([, x]) => x) as [Result, Result, Result, Result];
    console.log(`\nadded latency @ ${RATE}/s: p50 +${(r.p50 - d.p50).toFixed(2)} ms, p99 +${(r.p99 - d.p99).toFixed(2)} ms (goal ≤ 0.5 ms at p50)`);
    console.log(`saturation: router ${rs.rps.toFixed(0)} req/s vs direct ${ds.rps.toFixed(0)} req/s; p50 +${(rs.p50 - ds.p50).toFixed(2)} ms`);
    console.log(`gateway CPU per request ≈ ${(r.cpuUsPerReq - d.cpuUsPerReq).toFixed(0)} µs (router + 4 peers + their Redis/NATS clients, in this process)`);

    const attempt = quantile(stage.routed.reported, 0.5);
    const rest = stage.routed.p50 - stage.fanOut.p50 - stage.direct.p50;
    console.log(`\nstages, one call at a time (${STAGE_N} each, no queueing):`);
    console.log('| stage | p50 ms | p99 ms |');
    console.log('|---|---|---|');
    console.log(`| provider call: direct SDK | ${stage.direct.p50.toFixed(2)} | ${stage.direct.p99.toFixed(2)} |`);
    console.log(`| peer hop: limiter Acquire | ${stage.acquire.p50.toFixed(2)} | ${stage.acquire.p99.toFixed(2)} |`);
    console.log(`| peer hop: budget Reserve | ${stage.reserve.p50.toFixed(2)} | ${stage.reserve.p99.toFixed(2)} |`);
    console.log(`| fan-out: Acquire ∥ Reserve | ${stage.fanOut.p50.toFixed(2)} | ${stage.fanOut.p99.toFixed(2)} |`);
    console.log(`| router Complete, end to end | ${stage.routed.p50.toFixed(2)} | ${stage.routed.p99.toFixed(2)} |`);
    console.log(`| provider attempt as the router timed it (whole ms) | ${attempt.toFixed(0)} | ${quantile(stage.routed.reported, 0.99).toFixed(0)} |`);
    console.log(
      `added one at a time: p50 +${(stage.routed.p50 - stage.direct.p50).toFixed(2)} ms = fan-out ${stage.fanOut.p50.toFixed(2)} + ` +
        `router's own hop and work ${rest.toFixed(2)} (Complete − fan-out − direct call; p50s, so only roughly additive)`,
    );
  } finally {
    await stack.stop();
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
