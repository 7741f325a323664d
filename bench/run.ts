/**
 * `npm run bench -- <name> [args]`: speed and memory targets live here, not in
 * timed unit tests. Each benchmark is its own script beside the code it
 * measures; this only dispatches, so `npm run bench` lists what exists.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '..');
const benches: Record<string, { script: string; what: string }> = {
  simulator: {
    script: 'services/simulator/bench/simulator-load.ts',
    what: 'simulator throughput, zero latency, keep-alive (flags: --provider, --stream, --duration, --connections, --unique-prompts)',
  },
  tokens: { script: 'libs/tokens/bench/tokenizer-cost.ts', what: 'tokenizer cost and RSS growth over 12 MB of varied text (node_modules docs and types), then cost per KiB of prompt (arg: sample count), then per 1 MB of ordinary and of whitespace-free text' },
  router: {
    script: 'services/router/bench/complete.ts',
    what: 'added latency p50/p99 and CPU per request of Complete through the router (all peers, Redis, NATS) vs a direct SDK call, at a fixed rate and at saturation (flags: --seconds, --rate, --concurrency)',
  },
  edge: {
    script: 'services/router/bench/edge.ts',
    what: 'the HTTP edge (POST /v1/chat/completions) beside the gRPC Complete on the same router: added latency one call at a time, p50/p99 at a fixed rate, req/s at saturation, CPU per request (flags: --seconds, --rate, --concurrency, --stage-n)',
  },
  jobs: {
    script: 'services/jobs/bench/jobs.ts',
    what: 'jobs service: Submit latency p50/p99, jobs/s drained against the limiter-admitted rate (utilisation), queue CPU per job (flags: --jobs, --rpm, --window-ms, --concurrency, --submitters)',
  },
  providers: {
    script: 'libs/providers/bench/provider-call.ts',
    what: 'one provider call on the caller side against the stack bench mock upstream: bare fetch POST vs the openai SDK with its defaults vs our adapter, CPU µs per call and p50/p99, interleaved (flags: --rounds, --calls, --concurrency 1,16)',
  },
  metrics: { script: 'libs/telemetry/bench/record-cost.ts', what: 'ns per recorded sample: prom-client (used) vs the OTel metrics SDK, router label shapes (arg: iterations)' },
  breaker: {
    script: 'bench/breaker/outcomes.ts',
    what: 'breaker CPU per outcome (and Redis, NATS) draining a fixed number of outcome batches through the built breaker process; --ref <commit> runs that commit in alternate rounds (flags: --batches, --batch, --rounds, --ref)',
  },
  limiter: {
    script: 'services/limiter/bench/acquire.ts',
    what: 'Acquire p50/p99 and throughput, one replica on loopback, beside a bare Redis EVALSHA (flags: --n, --concurrency, --seconds)',
  },
  refusals: {
    script: 'bench/stack/refusal-cost.ts',
    what: 'the router\'s CPU per call by how the call ends (admitted, shed by the in-flight bound, unknown route, bad key) over the built stack, a fixed amount of work per figure; --ref <commit> runs that commit in alternate rounds (flags: --seconds, --rounds, --callers, --ref)',
  },
  stack: {
    script: 'bench/stack/stack-bench.ts',
    what: 'production topology (5 service processes, Redis, NATS) vs Portkey on one mock upstream: saturation, CPU per call over every process, added p50/p99 at 100 and 300 req/s, 2× saturation (goodput, refusals), peak RSS (flags: --quick, --reps, --seconds, --warmup, --traces, --only switchyard|portkey, --max-in-flight, --over-rate, --cpu-prof, --tsx, --variant label:K=V,…)',
  },
};

const [name, ...args] = process.argv.slice(2);
const bench = name ? benches[name] : undefined;
if (!bench) {
  console.log('usage: npm run bench -- <name> [args]\n');
  for (const [n, b] of Object.entries(benches)) console.log(`  ${n.padEnd(10)} ${b.what}`);
  process.exit(name ? 2 : 0);
}
const run = spawnSync(process.execPath, ['--import', 'tsx', resolve(root, bench.script), ...args], { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
