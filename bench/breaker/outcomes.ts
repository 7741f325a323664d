/**
 * `npm run bench -- breaker [--batches 4000] [--batch 5] [--rounds 3] [--ref <commit>] [--cpu-prof <dir>]`
 *
 * The breaker's CPU per outcome, the way the router feeds it: `batches`
 * AttemptOutcomeBatch messages of `batch` outcomes each (one deployment, all
 * successes: the steady state, no transitions) published on the outcomes
 * stream, drained by the built breaker process (dist/breaker/main.js, its
 * node-args) against Redis and NATS spawned here. Measured: the breaker's
 * user+system CPU (/proc) from its first message to the consumer's last ack,
 * divided by the outcomes; Redis's and NATS's beside it.
 *
 * A fixed amount of work rather than a rate, so the figure does not depend on
 * what else the two cores are doing (10 ms /proc resolution: keep
 * batches × batch in the tens of thousands). With `--ref`, that commit's
 * breaker runs in alternate rounds on fresh servers, for a before/after.
 * The default of 5 outcomes a batch is what the router's OUTCOME_BATCH_MS=5
 * gathers at about 1,000 calls/s. `--cpu-prof <dir>`: each breaker writes a
 * V8 profile there when it stops (bench/stack/cpu-profile-summary.ts reads it).
 */
import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { AttemptOutcomeBatchSchema, BatchedOutcomeSchema, ErrorClass } from '@switchyard/contracts';
import { OUTCOMES_STREAM, subjects } from '@switchyard/nats';
import { pidOfServer, processCpuMs, spawnProcess, startNats, startRedis } from '@switchyard/testing';
import { buildRef, buildServices, builtEntry, builtNodeArgs } from '../../scripts/build';
import { positiveArg, stringArg } from '../args';
import { OUTCOME_CONSUMER } from '@switchyard/breaker';

const BATCHES = positiveArg('batches', 4_000);
const BATCH = positiveArg('batch', 5);
const ROUNDS = positiveArg('rounds', 3);
const REF = stringArg('ref');
const CPU_PROF_DIR = stringArg('cpu-prof');

interface Round {
  breaker: number;
  redis: number;
  nats: number;
}

function batchMessage(round: number, n: number): Uint8Array {
  const outcomes = Array.from({ length: BATCH }, (_, i) =>
    create(BatchedOutcomeSchema, {
      outcome: {
        eventId: `r${round}-b${n}-o${i}`,
        requestId: `req-${n}-${i}`,
        deployment: { provider: 'openai', deployment: 'bench', model: 'bench-m' },
        errorClass: ErrorClass.UNSPECIFIED,
        latencyMs: 3,
      },
      traceContext: {},
    }),
  );
  return toBinary(AttemptOutcomeBatchSchema, create(AttemptOutcomeBatchSchema, { outcomes }));
}

async function round(index: number, dist: string | undefined): Promise<Round> {
  const [redis, nats] = await Promise.all([startRedis(), startNats({ jetstream: true })]);
  const entry = dist ? `${dist}/breaker/main.js` : builtEntry('breaker');
  const breaker = await spawnProcess({
    entry,
    nodeArgs: [...builtNodeArgs('breaker', dist), ...(CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : [])],
    env: { NATS_URL: nats.url, REDIS_URL: redis.url, GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', LOG_LEVEL: 'warn', OTEL_TRACES_EXPORTER: 'none', SWITCHYARD_INTERNAL_TOKEN: 'bench', SWITCHYARD_CONFIG: undefined },
    readyTimeoutMs: 60_000,
  });
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    const js = jsm.jetstream();
    const pids = { breaker: breaker.pid, redis: pidOfServer('redis-server', redis.port), nats: pidOfServer('nats-server', nats.port) };
    const drained = async () => {
      for (;;) {
        const info = await jsm.consumers.info(OUTCOMES_STREAM, OUTCOME_CONSUMER);
        if (info.num_pending === 0 && info.num_ack_pending === 0) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const publish = async (from: number, to: number) => {
      // 64 publishes in flight: the breaker, not this loop, sets the pace.
      let next = from;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < to) await js.publish(subjects.outcomeBatch(), batchMessage(index, next++), { msgID: randomUUID() });
        }),
      );
    };
    // Warm-up: the breaker's first messages (JIT, connections) are not measured.
    await publish(0, 200);
    await drained();
    const before = { breaker: processCpuMs(pids.breaker), redis: processCpuMs(pids.redis), nats: processCpuMs(pids.nats) };
    await publish(200, 200 + BATCHES);
    await drained();
    const outcomes = BATCHES * BATCH;
    const per = (name: keyof typeof pids) => ((processCpuMs(pids[name]) - before[name]) * 1000) / outcomes;
    return { breaker: per('breaker'), redis: per('redis'), nats: per('nats') };
  } finally {
    await nc.close();
    await breaker.stop('SIGTERM', 10_000);
    await Promise.all([redis.stop(), nats.stop()]);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const show = (xs: number[]) => `${median(xs).toFixed(1)} [${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]`;

async function main(): Promise<void> {
  await buildServices(['breaker']);
  const systems: { name: string; dist: string | undefined }[] = [{ name: 'this checkout', dist: undefined }];
  if (REF) systems.push({ name: REF, dist: await buildRef(REF, ['breaker']) });
  const results = new Map<string, Round[]>(systems.map((s) => [s.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const system of r % 2 === 0 ? systems : [...systems].reverse()) {
      const result = await round(r, system.dist);
      results.get(system.name)!.push(result);
      console.log(`round ${r + 1}/${ROUNDS} ${system.name}: breaker ${result.breaker.toFixed(1)} µs, redis ${result.redis.toFixed(1)} µs, nats ${result.nats.toFixed(1)} µs per outcome`);
    }
  }
  console.log(`\nbreaker bench: ${BATCHES} batches of ${BATCH} outcomes per round, ${ROUNDS} rounds, medians [min–max], CPU µs per outcome`);
  console.log('| | breaker | redis | nats |\n|---|---|---|---|');
  for (const [name, rounds] of results) {
    console.log(`| ${name} | ${show(rounds.map((x) => x.breaker))} | ${show(rounds.map((x) => x.redis))} | ${show(rounds.map((x) => x.nats))} |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
