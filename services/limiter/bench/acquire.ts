/**
 * `npm run bench -- limiter [--n 3000] [--concurrency 32] [--seconds 5] [--handoffs 200]`
 *
 * One limiter replica on loopback (production start(), real Redis and NATS
 * spawned on free ports), measured beside a bare Redis EVALSHA round trip in
 * the same run: latency p50/p99 of sequential calls, then throughput with
 * `concurrency` calls in flight. The ratio is the cost of the gRPC hop plus
 * the Acquire script over the cheapest possible Redis script call.
 *
 * Then the concurrency hand-off: a deployment with concurrency 1, its slot
 * held; a waiter blocks on it on another replica; the holder settles at a
 * random moment. Measured: from sending that Settle to the waiter's grant
 * arriving, `handoffs` times, with the waiter's replica woken by the slot feed
 * (default) and with one that only polls (LIMITER_CONCURRENCY_WAKEUP=0).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { KeyKind, LimiterService } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { createRedisClient } from '@switchyard/redis';
import { startNats, startRedis } from '@switchyard/testing';
import { loadConfig, start } from '../src';
import { gatewayYaml } from '../test/cluster';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

const N = arg('n', 3_000);
const CONCURRENCY = arg('concurrency', 32);
const SECONDS = arg('seconds', 5);
const HANDOFFS = arg('handoffs', 200);

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

async function latency(call: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 200; i++) await call();
  const samples: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await call();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return { p50: pct(samples, 50), p99: pct(samples, 99) };
}

async function throughput(call: () => Promise<unknown>): Promise<number> {
  let done = 0;
  const end = performance.now() + SECONDS * 1_000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await call();
        done++;
      }
    }),
  );
  return done / SECONDS;
}

type Client = ReturnType<typeof createClient<typeof LimiterService.method>>;

/** Settle sent on `holder`'s replica → the grant of a waiter blocked on `waiter`'s replica arrives. */
async function handoff(holder: Client, waiter: Client): Promise<{ p50: number; p99: number }> {
  const single = [{ kind: KeyKind.DEPLOYMENT, id: 'single' }];
  const samples: number[] = [];
  let held = await holder.acquire({ keys: single });
  for (let i = 0; i < HANDOFFS + 10; i++) {
    if (!held.granted) throw new Error('hand-off: the holder was not granted');
    const waiting = waiter.acquire({ keys: single, maxWaitMs: 5_000 }).then((r) => ({ r, at: performance.now() }));
    // Settle at a random point of the waiter's poll cycle (and after it queued).
    await new Promise((res) => setTimeout(res, 20 + Math.random() * 50));
    const sent = performance.now();
    await holder.settle({ reservationId: held.reservationId, actualTokens: 0 });
    const { r, at } = await waiting;
    if (!r.granted) throw new Error('hand-off: the waiter was not granted');
    if (i >= 10) samples.push(at - sent);
    // The waiter's slot goes back; the holder takes it for the next round.
    await waiter.settle({ reservationId: r.reservationId, actualTokens: 0 });
    held = await holder.acquire({ keys: single });
  }
  await holder.settle({ reservationId: held.reservationId, actualTokens: 0 });
  samples.sort((a, b) => a - b);
  return { p50: pct(samples, 50), p99: pct(samples, 99) };
}

async function main() {
  const [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
  const dir = mkdtempSync(join(tmpdir(), 'limiter-bench-'));
  // Limits high enough that every Acquire is granted: the bench measures the decision path, not denials.
  writeFileSync(
    join(dir, 'switchyard.yaml'),
    gatewayYaml({ d: '{ rpm: 100000000, tpm: 1000000000 }', single: '{ concurrency: 1 }' }, { t: '{ rpm: 100000000 }' }),
  );
  const env = { SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'), NATS_URL: nats.url, REDIS_URL: redis.url, GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', LOG_LEVEL: 'silent' };
  const service = await start(loadConfig(env));
  // Waiters for the hand-off: one replica woken by the slot feed, one that only polls.
  const woken = await start(loadConfig(env));
  const polling = await start(loadConfig({ ...env, LIMITER_CONCURRENCY_WAKEUP: '0' }));
  const client = createClient(LimiterService, `127.0.0.1:${service.port}`, { defaultDeadlineMs: 10_000 });
  const wokenClient = createClient(LimiterService, `127.0.0.1:${woken.port}`, { defaultDeadlineMs: 10_000 });
  const pollingClient = createClient(LimiterService, `127.0.0.1:${polling.port}`, { defaultDeadlineMs: 10_000 });
  const bare = createRedisClient({ url: redis.url, name: 'limiter-bench' });
  const sha = String(await bare.script('LOAD', 'return 1'));
  try {
    const evalsha = () => bare.evalsha(sha, 0);
    const acquire = () =>
      client.acquire({
        keys: [
          { kind: KeyKind.DEPLOYMENT, id: 'd' },
          { kind: KeyKind.TENANT, id: 't' },
        ],
        tokens: 500,
      });
    const evalLatency = await latency(evalsha);
    const acqLatency = await latency(acquire);
    const evalRate = await throughput(evalsha);
    const acqRate = await throughput(acquire);
    const wokenHandoff = await handoff(client, wokenClient);
    const pollingHandoff = await handoff(client, pollingClient);
    const f = (ms: number) => `${ms.toFixed(3)} ms`;
    console.log(`limiter bench: one replica on loopback, ${N} sequential calls, then ${CONCURRENCY} in flight for ${SECONDS} s`);
    console.table({
      'bare EVALSHA (return 1)': { p50: f(evalLatency.p50), p99: f(evalLatency.p99), 'ops/s': Math.round(evalRate) },
      'Acquire (gRPC, deployment + tenant, rpm + tpm)': { p50: f(acqLatency.p50), p99: f(acqLatency.p99), 'ops/s': Math.round(acqRate) },
      'ratio Acquire / EVALSHA': {
        p50: `${(acqLatency.p50 / evalLatency.p50).toFixed(1)}×`,
        p99: `${(acqLatency.p99 / evalLatency.p99).toFixed(1)}×`,
        'ops/s': `${(acqRate / evalRate).toFixed(2)}×`,
      },
    });
    console.log(`concurrency hand-off (concurrency 1, Settle on one replica, the waiter on another), ${HANDOFFS} times: Settle sent → waiter granted`);
    console.table({
      'waiter woken by the slot feed (NATS)': { p50: f(wokenHandoff.p50), p99: f(wokenHandoff.p99) },
      'waiter polling every 50 ms (LIMITER_CONCURRENCY_WAKEUP=0)': { p50: f(pollingHandoff.p50), p99: f(pollingHandoff.p99) },
    });
  } finally {
    client.close();
    wokenClient.close();
    pollingClient.close();
    await Promise.all([woken.stop(), polling.stop()]);
    await bare.quit();
    await service.stop();
    await Promise.all([nats.stop(), redis.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
