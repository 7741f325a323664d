/**
 * `npm run bench -- stack [--reps 3] [--seconds 10] [--warmup 10] [--quick] [--traces] [--only switchyard|portkey] [--max-in-flight 64] [--min-in-flight 32] [--cpu-prof <dir>] [--tsx] [--variant 'label:K=V,…']`
 *   (summarise a profile: npx tsx bench/stack/cpu-profile-summary.ts <dir>/<file>.cpuprofile)
 *
 * The production topology (`npm run stack`'s shape: router, limiter, breaker,
 * budget and cache, each its own OS process, with Redis and NATS spawned here
 * on free ports) beside Portkey's OSS gateway, both in front of the same mock
 * upstream (bench/stack/mock-upstream.ts, answers at once). One OpenAI
 * deployment, cache bypassed (route not cacheable), traces not exported
 * (OTEL_TRACES_EXPORTER=none; `--traces` adds a third system exporting every
 * span to a local OTLP sink), LOG_LEVEL=warn. The systems run interleaved,
 * one repetition each in turn; the table gives medians with [min–max].
 *
 * Rows, per system and repetition:
 * - saturation: 32 calls in flight (closed loop) → req/s; CPU per call is
 *   utime+stime from /proc/<pid>/stat of every process of the system (the
 *   services, redis-server and nats-server for Switchyard; Portkey's node)
 *   over that row, divided by the calls completed;
 * - added p50/p99 at 100 and 300 req/s (open loop: calls start on schedule,
 *   whatever is still in flight) against the same rate sent straight to the
 *   mock, measured in the same repetition;
 * - 2× saturation offered (open loop at twice the row above): goodput
 *   (successes/s) against saturation, admitted calls' p99 against theirs at
 *   saturation, how many were refused (RESOURCE_EXHAUSTED/UNAVAILABLE with a
 *   retry-after) and how fast (p50/p99/max, share within 5 ms), and calls that
 *   failed otherwise (admitted, then failed); beside them this process's own
 *   event-loop delay p99, which every measured latency includes;
 * - peak RSS: VmHWM of each process at the end; beside it the peak of its
 *   RssAnon (sampled every 250 ms from the start of the warm-up), its own
 *   memory without the file pages VmHWM also counts: above all the node
 *   binary's code, about 45 MB resident in each Node process and shared by
 *   all of them.
 *
 * The services run built (scripts/build.ts, as `npm run stack` runs them;
 * `--tsx`: from their sources through tsx). The router runs with ROUTER_MAX_IN_FLIGHT=64
 * (`--max-in-flight`; 0 = no bound) and ROUTER_MIN_IN_FLIGHT=32 (`--min-in-flight`), its
 * other settings at their defaults; a variant's own ROUTER_* settings win. In the
 * saturation row a refused caller waits its retry-after before calling again.
 *
 * The load generator is this process; its CPU is not counted. `--quick`: one
 * repetition of 3 s rows, for a smoke run.
 */
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Role, RouterService } from '@switchyard/contracts';
import { createClient, parseGrpcError, status } from '@switchyard/grpc';
import { createGrpcCaller } from './grpc-caller';
import { buildRef, buildServices } from '../../scripts/build';
import { BENCH_KEY, benchGatewayYaml, startStackProcesses } from './stack-processes';

const STACK_SERVICES = ['router', 'limiter', 'breaker', 'budget', 'cache'] as const;
import { freePort, processCpuMs, startOtlpReceiver, spawnProcess, type SpawnedProcess } from '@switchyard/testing';

const root = resolve(__dirname, '../..');
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const arg = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const QUICK = flag('--quick');
const REPS = arg('--reps', QUICK ? 1 : 3);
const SECONDS = arg('--seconds', QUICK ? 3 : 10);
const CONCURRENCY = arg('--concurrency', 32);
/**
 * Seconds of the saturation row's load each system takes once, unrecorded,
 * before the first repetition (`--warmup`). The 2 s warm-up of every
 * repetition was not enough: without this the first repetition measured low
 * in 8 of 9 runs (e.g. 790 against 1,010 and 894 req/s), for every system
 * in it, and not after 15 s of idle instead; with 10 s, it did not (919 and
 * 1,004 against 962 and 895). Heaps growing to their steady size and code
 * still tiering up, in the services and in this process, are the likely cause.
 */
const WARMUP_SECONDS = arg('--warmup', QUICK ? 3 : 10);
const ONLY = (() => {
  const i = argv.indexOf('--only');
  return i >= 0 ? argv[i + 1] : undefined;
})();
/** The router's ROUTER_MAX_IN_FLIGHT here: twice the 32 in flight that saturate it, since this upstream answers at once. */
const MAX_IN_FLIGHT = arg('--max-in-flight', 64);
/**
 * The router's ROUTER_MIN_IN_FLIGHT (the adaptive bound's floor): the 32 calls
 * in flight of the saturation row. With leases the router saturates at about
 * 800/s here, and an event loop delayed by the load generator sharing the two
 * cores shrank a floor of 4 under those 32 calls, halving the measured
 * saturation (2 × 4 s, `--variant 'floor32:ROUTER_MIN_IN_FLIGHT=32'` against
 * 4: 826 against 443 req/s); a floor of 4 refuses faster at 2× (see README).
 */
const MIN_IN_FLIGHT = arg('--min-in-flight', 32);
/**
 * The overload row's offered rate, req/s: by default (0) twice each system's
 * own saturation in that repetition, which is the target's definition but
 * lets two variants of one run face different loads; a fixed rate gives an
 * A/B of an overload lever the same load on both sides.
 */
const OVER_RATE = arg('--over-rate', 0);
/** Directory for the router's `node --cpu-prof` profile (written when it stops), or none. */
const CPU_PROF_DIR = (() => {
  const i = argv.indexOf('--cpu-prof');
  return i >= 0 ? resolve(argv[i + 1]!) : undefined;
})();
/** Run the services from their TypeScript sources through tsx instead of the build (`npm run stack` runs the build). */
const TSX = flag('--tsx');
/** A variant's space-separated node flags. */
const flags = (spaced: string | undefined) => (spaced ? spaced.split(' ').filter(Boolean) : []);
/**
 * `--variant 'label:K=V,K2=V2'` (repeatable): one more Switchyard stack, run
 * interleaved with the others, with that environment for every service
 * (TSX=1: from sources through tsx; REF=<commit>: that commit's sources,
 * built into a temp dir, to measure a change before/after; ROUTER_NODE_ARGS /
 * SERVICES_NODE_ARGS: node flags, space-separated, added to the router's / the
 * internal services' command lines, for V8 flags NODE_OPTIONS does not take). On a shared
 * machine an A/B comparison means anything only when both run in the same
 * repetitions.
 */
const VARIANTS = argv.flatMap((a, i) => (a === '--variant' && argv[i + 1] ? [argv[i + 1]!] : [])).map((spec) => {
  const colon = spec.indexOf(':');
  if (colon <= 0) throw new Error(`--variant ${spec}: expected label:K=V,K2=V2`);
  const env = Object.fromEntries(
    spec
      .slice(colon + 1)
      .split(',')
      .filter(Boolean)
      .map((kv) => {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new Error(`--variant ${spec}: ${kv} is not K=V`);
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      }),
  );
  return { label: spec.slice(0, colon), env };
});
const CALL_DEADLINE_MS = 10_000;
const PROMPT = 'Say ok.';

/** A refusal carries its retry-after (ms), which a closed-loop caller honours. */
type Outcome = { ok: true } | { ok: false; refused: boolean; code: string; retryMs?: number };

interface System {
  name: string;
  /** Every process whose CPU and memory count, by name. */
  pids(): Record<string, number>;
  call(i: number): Promise<Outcome>;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------- /proc

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
/** RssAnon now: the process's own resident memory, without the file pages (the node binary's code above all) that VmHWM also counts. */
function anonRssMb(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN; // the process is gone
  }
}

/** The highest RssAnon of every process seen, sampled every `everyMs` until stopped (the kernel keeps no peak of it). */
function sampleAnonPeaks(pids: () => number[], everyMs = 250) {
  const peaks = new Map<number, number>();
  const sample = () => {
    for (const pid of pids()) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, anonRssMb(pid) || 0));
  };
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return (pid: number) => peaks.get(pid) ?? NaN;
    },
  };
}
const cpuOf = (pids: Record<string, number>) => Object.fromEntries(Object.entries(pids).map(([n, p]) => [n, processCpuMs(p)]));

// ---------------------------------------------------------------- HTTP callers

const agent = new Agent({ keepAlive: true, maxSockets: 4096 });
function post(url: URL, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolvePost, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, timeout: CALL_DEADLINE_MS, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolvePost({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
const chatBody = JSON.stringify({ model: 'bench-m', messages: [{ role: 'user', content: PROMPT }], max_tokens: 16 });
async function httpCall(url: URL, headers: Record<string, string>): Promise<Outcome> {
  try {
    const res = await post(url, chatBody, headers);
    if (res.status === 200) return { ok: true };
    return { ok: false, refused: res.status === 429 || res.status === 503, code: `HTTP ${res.status}`, retryMs: 100 };
  } catch (err) {
    return { ok: false, refused: false, code: (err as Error).message };
  }
}

// ---------------------------------------------------------------- systems

async function startMock(): Promise<SpawnedProcess> {
  return spawnProcess({ entry: resolve(__dirname, 'mock-upstream.ts'), readyTimeoutMs: 60_000 });
}

/** The services as `npm run stack` runs them (scripts/stack.ts), on free ports. */
async function startSwitchyard(name: string, upstream: string, variantEnv: Record<string, string>): Promise<System> {
  const { TSX: tsxVar, REF: ref, ROUTER_NODE_ARGS: routerNodeArgs, SERVICES_NODE_ARGS: servicesNodeArgs, CALLER: caller, ...extraEnv } = variantEnv;
  const stack = await startStackProcesses({
    yaml: benchGatewayYaml(upstream),
    tsx: TSX || tsxVar === '1',
    ...(ref ? { dist: await buildRef(ref, STACK_SERVICES) } : {}),
    env: extraEnv,
    // A variant's own ROUTER_* settings win over the bench's.
    routerEnv: { ROUTER_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), ROUTER_MIN_IN_FLIGHT: String(MIN_IN_FLIGHT), ...extraEnv },
    routerNodeArgs: [...flags(routerNodeArgs), ...(CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF_DIR}`] : [])],
    servicesNodeArgs: flags(servicesNodeArgs),
  });
  const { address, pids } = stack;
  const metadata = { 'x-api-key': BENCH_KEY };
  const request = { route: 'bench', messages: [{ role: Role.USER, content: PROMPT }], params: { maxTokens: 16 } };
  const client = caller === 'grpc-js' ? createClient(RouterService, address, { defaultDeadlineMs: CALL_DEADLINE_MS }) : undefined;
  const lean = client ? undefined : createGrpcCaller(address, RouterService.method.complete, request, metadata, CALL_DEADLINE_MS);
  return {
    name,
    pids: () => pids,
    async call() {
      if (lean) {
        const o = await lean.call();
        if (o.code === status.OK) return { ok: true };
        const refused = (o.code === status.RESOURCE_EXHAUSTED || o.code === status.UNAVAILABLE) && o.retryDelayMs !== undefined;
        return { ok: false, refused, code: `${status[o.code] ?? o.code}${refused ? '' : `: ${o.message.slice(0, 80)}`}`, ...(refused ? { retryMs: o.retryDelayMs } : {}) };
      }
      try {
        await client!.complete(request, { metadata });
        return { ok: true };
      } catch (err) {
        const e = parseGrpcError(err);
        const refused = (e.code === status.RESOURCE_EXHAUSTED || e.code === status.UNAVAILABLE) && e.details.retryDelayMs !== undefined;
        return { ok: false, refused, code: `${status[e.code]}${refused ? '' : `: ${e.message.slice(0, 80)}`}`, ...(refused ? { retryMs: e.details.retryDelayMs } : {}) };
      }
    },
    async stop() {
      client?.close();
      lean?.close();
      await stack.stop();
    },
  };
}

/**
 * Portkey's OSS gateway (`@portkey-ai/gateway`, its Node build), bound to
 * 127.0.0.1 on a free port, told per request (x-portkey-* headers) to send to
 * the mock as an OpenAI-compatible custom host. No config file, no cache, no
 * retries: its defaults.
 */
async function startPortkey(upstream: string): Promise<System> {
  const port = await freePort();
  const entry = resolve(root, 'node_modules/@portkey-ai/gateway/build/start-server.js');
  // NODE_ENV=production: no log console routes; --headless: no UI.
  const child = spawn(process.execPath, ['--import', pathToFileURL(resolve(__dirname, 'bind-loopback.mjs')).href, entry, `--port=${port}`, '--headless'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production', REDIS_CONNECTION_STRING: undefined },
  });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const url = new URL(`http://127.0.0.1:${port}/v1/chat/completions`);
  const headers = { authorization: 'Bearer sk-bench-upstream', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstream}/v1` };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await httpCall(url, headers).catch(() => ({ ok: false }) as Outcome);
    if (r.ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`portkey did not come up:\n${output.join('')}`);
    await new Promise((r2) => setTimeout(r2, 250));
  }
  return {
    name: 'Portkey',
    pids: () => ({ portkey: child.pid! }),
    call: () => httpCall(url, headers),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

// ---------------------------------------------------------------- load shapes

const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);

interface Row {
  /** This process's own event-loop delay p99 over the row (ms): the share of measured latency that is the load generator's. */
  selfLagP99: number;
  /** This process's own CPU over the row (ms): the load generator shares the cores with what it measures. */
  selfCpuMs: number;
  ok: number;
  latencies: number[];
  refused: number[];
  failed: Map<string, number>;
  wallMs: number;
  cpuMs: Record<string, number>;
}

async function measure(sys: System | undefined, run: (record: (o: Outcome, ms: number) => void) => Promise<void>): Promise<Row> {
  const row: Row = { selfLagP99: NaN, selfCpuMs: 0, ok: 0, latencies: [], refused: [], failed: new Map(), wallMs: 0, cpuMs: {} };
  const pids = sys?.pids() ?? {};
  const cpu0 = cpuOf(pids);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const lags: number[] = [];
  let due = t0 + 10;
  const lagTimer = setInterval(() => {
    const now = performance.now();
    lags.push(now - due);
    due = now + 10;
  }, 10);
  await run((o, ms) => {
    if (o.ok) {
      row.ok += 1;
      row.latencies.push(ms);
    } else if (o.refused) row.refused.push(ms);
    else row.failed.set(o.code, (row.failed.get(o.code) ?? 0) + 1);
  });
  row.wallMs = performance.now() - t0;
  const self = process.cpuUsage(self0);
  row.selfCpuMs = (self.user + self.system) / 1000;
  clearInterval(lagTimer);
  row.selfLagP99 = quantile(lags.sort((a, b) => a - b), 0.99);
  const cpu1 = cpuOf(pids);
  row.cpuMs = Object.fromEntries(Object.keys(pids).map((n) => [n, cpu1[n]! - cpu0[n]!]));
  row.latencies.sort((a, b) => a - b);
  row.refused.sort((a, b) => a - b);
  return row;
}

function closedLoop(call: (i: number) => Promise<Outcome>, concurrency: number, seconds: number) {
  return async (record: (o: Outcome, ms: number) => void) => {
    let i = 0;
    const until = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          const start = performance.now();
          const o = await call(i++);
          record(o, performance.now() - start);
          // A refused caller comes back when told to, as the SDKs do, rather than spinning on refusals.
          if (!o.ok && o.refused) await new Promise((r) => setTimeout(r, o.retryMs ?? 100));
        }
      }),
    );
  };
}

function openLoop(call: (i: number) => Promise<Outcome>, rate: number, seconds: number) {
  return async (record: (o: Outcome, ms: number) => void) => {
    const t0 = performance.now();
    const total = Math.round(rate * seconds);
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const start = performance.now();
      inflight.push(call(i).then((o) => record(o, performance.now() - start)));
    }
    await Promise.all(inflight);
  };
}

// ---------------------------------------------------------------- one repetition

interface Rep {
  satRps: number;
  cpuPerCallMs: number;
  cpuShare: Record<string, number>;
  /** The load generator's own CPU per call at saturation and in the overload row (ms). */
  selfCpuPerCallMs: { sat: number; over: number };
  added: Record<number, { p50: number; p99: number; refused: number; failed: number }>;
  satRefused: number;
  over: {
    offered: number;
    goodput: number;
    admittedP99: number;
    satP99: number;
    refused: number;
    refusedP50: number;
    refusedP99: number;
    refusedMax: number;
    /** Share of refusals answered within 5 ms (issue 15: every one). */
    refusedWithin5: number;
    failed: number;
    failedCodes: string;
    selfLagP99: number;
  };
}

const RATES = [100, 300];

async function repetition(sys: System, direct: Record<number, Row>): Promise<Rep> {
  await measure(sys, closedLoop((i) => sys.call(i), CONCURRENCY, Math.min(2, SECONDS))); // warm
  const sat = await measure(sys, closedLoop((i) => sys.call(i), CONCURRENCY, SECONDS));
  const satRps = (sat.ok / sat.wallMs) * 1000;
  const cpuTotal = Object.values(sat.cpuMs).reduce((a, b) => a + b, 0);
  const calls = Math.max(1, sat.ok + sat.refused.length + [...sat.failed.values()].reduce((a, b) => a + b, 0));
  const added: Rep['added'] = {};
  for (const rate of RATES) {
    const r = await measure(sys, openLoop((i) => sys.call(i), rate, SECONDS));
    const d = direct[rate]!;
    added[rate] = {
      p50: quantile(r.latencies, 0.5) - quantile(d.latencies, 0.5),
      p99: quantile(r.latencies, 0.99) - quantile(d.latencies, 0.99),
      refused: r.refused.length,
      failed: [...r.failed.values()].reduce((a, b) => a + b, 0),
    };
  }
  const offered = OVER_RATE > 0 ? OVER_RATE : Math.round(2 * satRps);
  const over = await measure(sys, openLoop((i) => sys.call(i), offered, SECONDS));
  const failed = [...over.failed.values()].reduce((a, b) => a + b, 0);
  return {
    satRps,
    cpuPerCallMs: cpuTotal / calls,
    cpuShare: Object.fromEntries(Object.entries(sat.cpuMs).map(([n, ms]) => [n, ms / calls])),
    satRefused: sat.refused.length,
    selfCpuPerCallMs: { sat: sat.selfCpuMs / calls, over: over.selfCpuMs / Math.max(1, over.ok + over.refused.length + failed) },
    added,
    over: {
      offered,
      goodput: (over.ok / over.wallMs) * 1000,
      admittedP99: quantile(over.latencies, 0.99),
      satP99: quantile(sat.latencies, 0.99),
      refused: over.refused.length,
      refusedP50: quantile(over.refused, 0.5),
      refusedP99: quantile(over.refused, 0.99),
      refusedWithin5: over.refused.length ? over.refused.filter((ms) => ms <= 5).length / over.refused.length : NaN,
      refusedMax: over.refused.at(-1) ?? NaN,
      failed,
      failedCodes: [...over.failed.entries()].map(([c, n]) => `${n}× ${c}`).join('; '),
      selfLagP99: over.selfLagP99,
    },
  };
}

// ---------------------------------------------------------------- table

const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
function fmt(xs: number[], digits = 1): string {
  const s = xs.filter((x) => !Number.isNaN(x));
  if (!s.length) return '—';
  const f = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const m = f(median(s));
  return s.length > 1 ? `${m} [${f(Math.min(...s))}–${f(Math.max(...s))}]` : m;
}
const signed = (xs: number[], digits = 1) => {
  const t = fmt(xs, digits);
  return t.startsWith('-') || t === '—' ? t : `+${t}`;
};

async function main() {
  if (!TSX) await buildServices(STACK_SERVICES);
  const mock = await startMock();
  const upstream = `http://127.0.0.1:${mock.port}`;
  const directUrl = new URL(`${upstream}/v1/chat/completions`);
  const directCall = () => httpCall(directUrl, { authorization: 'Bearer sk-bench-upstream' });
  const systems: System[] = [];
  const otlp = flag('--traces') ? await startOtlpReceiver() : undefined;
  try {
    if (ONLY !== 'portkey') systems.push(await startSwitchyard('Switchyard', upstream, {}));
    if (ONLY !== 'switchyard') systems.push(await startPortkey(upstream));
    for (const v of VARIANTS) systems.push(await startSwitchyard(`Switchyard, ${v.label}`, upstream, v.env));
    if (otlp) systems.push(await startSwitchyard('Switchyard, traces exported', upstream, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '1000' }));
    const anon = sampleAnonPeaks(() => systems.flatMap((s) => Object.values(s.pids())));
    if (WARMUP_SECONDS > 0) for (const sys of systems) await measure(sys, closedLoop((i) => sys.call(i), CONCURRENCY, WARMUP_SECONDS));
    const reps = new Map<string, Rep[]>(systems.map((s) => [s.name, []]));
    for (let rep = 0; rep < REPS; rep++) {
      for (const sys of systems) {
        // The direct baseline beside each system's open-loop rows, so both see the same machine.
        const direct: Record<number, Row> = {};
        for (const rate of RATES) direct[rate] = await measure(undefined, openLoop(directCall, rate, SECONDS));
        const r = await repetition(sys, direct);
        reps.get(sys.name)!.push(r);
        console.error(`rep ${rep + 1}/${REPS} ${sys.name}: ${r.satRps.toFixed(0)} req/s, ${r.cpuPerCallMs.toFixed(2)} ms CPU/call, 2×: goodput ${r.over.goodput.toFixed(0)}, refused ${r.over.refused}, failed ${r.over.failed} ${r.over.failedCodes}`);
      }
    }
    const rss = systems.map((s) => Object.entries(s.pids()).map(([n, p]) => [n, peakRssMb(p)] as const));
    const anonPeak = anon.stop();
    const anonRss = systems.map((s) => Object.entries(s.pids()).map(([n, p]) => [n, anonPeak(p)] as const));
    const names = systems.map((s) => s.name);
    const col = (f: (r: Rep[]) => string) => systems.map((s) => f(reps.get(s.name)!));
    const rows: [string, string[]][] = [
      [`saturation (${CONCURRENCY} in flight), req/s`, col((r) => fmt(r.map((x) => x.satRps), 0))],
      ['… refused at saturation (callers wait the retry-after)', col((r) => fmt(r.map((x) => x.satRefused), 0))],
      ['CPU per call, all processes, ms', col((r) => fmt(r.map((x) => x.cpuPerCallMs), 2))],
      ['… by process, ms', col((r) => Object.keys(r[0]!.cpuShare).map((n) => `${n} ${median(r.map((x) => x.cpuShare[n]!)).toFixed(2)}`).join(', '))],
      ['… the load generator\'s own CPU per call at saturation / at 2×, ms (not counted above; it shares the cores)', col((r) => `${fmt(r.map((x) => x.selfCpuPerCallMs.sat), 2)} / ${fmt(r.map((x) => x.selfCpuPerCallMs.over), 2)}`)],
      ...RATES.flatMap((rate): [string, string[]][] => [
        [`added p50 / p99 at ${rate} req/s, ms`, col((r) => `${signed(r.map((x) => x.added[rate]!.p50), 2)} / ${signed(r.map((x) => x.added[rate]!.p99), 1)}`)],
        [`… refused / failed at ${rate} req/s`, col((r) => `${fmt(r.map((x) => x.added[rate]!.refused), 0)} / ${fmt(r.map((x) => x.added[rate]!.failed), 0)}`)],
      ]),
      ['2× saturation: offered req/s', col((r) => fmt(r.map((x) => x.over.offered), 0))],
      ['… goodput req/s (% of saturation; target ≥ 90 %)', col((r) => `${fmt(r.map((x) => x.over.goodput), 0)} (${(median(r.map((x) => x.over.goodput / x.satRps)) * 100).toFixed(0)} %)`)],
      ['… admitted p99 ms (p99 at saturation; ratio, target ≤ 2×)', col((r) => `${fmt(r.map((x) => x.over.admittedP99), 1)} (${fmt(r.map((x) => x.over.satP99), 1)}; ${median(r.map((x) => x.over.admittedP99 / x.over.satP99)).toFixed(2)}×)`)],
      ['… refused with retry-after: count', col((r) => fmt(r.map((x) => x.over.refused), 0))],
      ['… refusal latency p50 / p99 / max ms (target max ≤ 5)', col((r) => `${fmt(r.map((x) => x.over.refusedP50), 1)} / ${fmt(r.map((x) => x.over.refusedP99), 1)} / ${fmt(r.map((x) => x.over.refusedMax), 1)}`)],
      ['… refusals within 5 ms, %', col((r) => fmt(r.map((x) => x.over.refusedWithin5 * 100), 0))],
      ['… the load generator\'s own event-loop delay p99, ms (part of every latency above)', col((r) => fmt(r.map((x) => x.over.selfLagP99), 1))],
      ['… admitted but failed (neither success nor refusal)', col((r) => `${fmt(r.map((x) => x.over.failed), 0)}${r.some((x) => x.over.failedCodes) ? ` (${r.map((x) => x.over.failedCodes).filter(Boolean)[0]})` : ''}`)],
      ['peak RSS, MB (total)', rss.map((ps) => `${ps.reduce((a, [, m]) => a + m, 0).toFixed(0)}`)],
      ['… by process', rss.map((ps) => ps.map(([n, m]) => `${n} ${m.toFixed(0)}`).join(', '))],
      ['… of it the process\'s own (peak anonymous RSS, without the node binary\'s pages every Node process shares), MB', anonRss.map((ps) => ps.map(([n, m]) => `${n} ${m.toFixed(0)}`).join(', '))],
    ];
    console.log(`\nstack bench: ${REPS} repetition(s), ${SECONDS} s per row, interleaved; medians [min–max];${OVER_RATE > 0 ? ` overload row at ${OVER_RATE} req/s for every system;` : ''} router ROUTER_MAX_IN_FLIGHT=${MAX_IN_FLIGHT} ROUTER_MIN_IN_FLIGHT=${MIN_IN_FLIGHT} (unless a variant sets them); services ${TSX ? 'through tsx' : 'built (dist/)'}; Node ${process.version}, ${cpus().length} CPUs`);
    console.log(`| | ${names.join(' | ')} |`);
    console.log(`|---|${names.map(() => '---').join('|')}|`);
    for (const [label, cells] of rows) console.log(`| ${label} | ${cells.join(' | ')} |`);
  } finally {
    for (const s of systems) await s.stop().catch(() => undefined);
    await otlp?.stop().catch(() => undefined);
    await mock.stop();
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
