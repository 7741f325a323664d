/**
 * `npm run bench -- router [--seconds 5] [--rate 500] [--concurrency 64]`
 *
 * Added latency of a Complete through the router (all four peers, Redis,
 * NATS) against a direct OpenAI SDK call to the same simulator, at a fixed
 * request rate and at saturation (closed loop), in one run. The router and its
 * peers run in this process (production start()), the simulator in its own;
 * CPU per request is this process's user+system time divided by requests, so
 * router-minus-direct is what the gateway costs.
 */
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { hashApiKey } from '@switchyard/config';
import { Role } from '@switchyard/contracts';
import { SIM_KEY, startStack } from '../test/stack';

const arg = (flag: string, fallback: number) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('--seconds', 5);
const RATE = arg('--rate', 500);
const CONCURRENCY = arg('--concurrency', 64);
const KEY = 'bench-key';

const yaml = (sim: string) => `
deployments:
  bench:
    provider: openai
    baseUrl: ${sim}/v1
    model: bench-m
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }
routes:
  bench: { cacheable: false, candidates: [{ deployment: bench }] }
tenants:
  bench:
    apiKeys: [{ id: bench-main, sha256: ${hashApiKey(KEY)} }]
`;

interface Result {
  n: number;
  errors: number;
  p50: number;
  p99: number;
  rps: number;
  cpuUsPerReq: number;
}

function summarise(lat: number[], errors: number, wallMs: number, cpu: NodeJS.CpuUsage): Result {
  const s = [...lat].sort((a, b) => a - b);
  const q = (x: number) => s[Math.min(s.length - 1, Math.floor(x * s.length))] ?? NaN;
  return { n: s.length, errors, p50: q(0.5), p99: q(0.99), rps: (s.length / wallMs) * 1000, cpuUsPerReq: (cpu.user + cpu.system) / Math.max(1, s.length + errors) };
}

async function fixedRate(call: (i: number) => Promise<unknown>): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const total = Math.round(SECONDS * RATE);
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const start = performance.now();
    inflight.push(
      call(i).then(
        () => void lat.push(performance.now() - start),
        () => void (errors += 1),
      ),
    );
  }
  await Promise.all(inflight);
  return summarise(lat, errors, performance.now() - t0, process.cpuUsage(cpu0));
}

async function saturate(call: (i: number) => Promise<unknown>): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  let i = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        const start = performance.now();
        try {
          await call(i++);
          lat.push(performance.now() - start);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return summarise(lat, errors, performance.now() - t0, process.cpuUsage(cpu0));
}

async function main() {
  const stack = await startStack(yaml, { seed: 1, defaults: { limits: { rpm: 100_000_000, tpm: 100_000_000_000 } }, deployments: { 'bench-m': {} } }, { LOG_LEVEL: 'silent' });
  try {
    const sdk = new OpenAI({ apiKey: SIM_KEY, baseURL: `${stack.sim.url}/v1`, maxRetries: 0 });
    const direct = (i: number) => sdk.chat.completions.create({ model: 'bench-m', messages: [{ role: 'user', content: `bench ${i}` }], max_tokens: 16 });
    const routed = (i: number) =>
      stack.client.complete({ route: 'bench', messages: [{ role: Role.USER, content: `bench ${i}` }], params: { maxTokens: 16 } }, { metadata: { 'x-api-key': KEY } });
    // Warm both paths (connections, JIT, replicas).
    for (let i = 0; i < 200; i++) await Promise.all([direct(-i), routed(-i)]);
    const rows: [string, Result][] = [];
    rows.push([`direct SDK @ ${RATE}/s`, await fixedRate(direct)]);
    rows.push([`router     @ ${RATE}/s`, await fixedRate(routed)]);
    rows.push([`direct SDK saturated (${CONCURRENCY} conc)`, await saturate(direct)]);
    rows.push([`router     saturated (${CONCURRENCY} conc)`, await saturate(routed)]);
    console.log(`\nrouter bench: ${SECONDS} s per row, simulator zero latency, Node ${process.version}`);
    console.log('| path | requests | errors | p50 ms | p99 ms | req/s | CPU µs/req (this process) |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [name, r] of rows) console.log(`| ${name} | ${r.n} | ${r.errors} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.rps.toFixed(0)} | ${r.cpuUsPerReq.toFixed(0)} |`);
    const [d, r, ds, rs] = rows.map(([, x]) => x) as [Result, Result, Result, Result];
    console.log(`\nadded latency @ ${RATE}/s: p50 +${(r.p50 - d.p50).toFixed(2)} ms, p99 +${(r.p99 - d.p99).toFixed(2)} ms (goal ≤ 0.5 ms at p50)`);
    console.log(`saturation: router ${rs.rps.toFixed(0)} req/s vs direct ${ds.rps.toFixed(0)} req/s; p50 +${(rs.p50 - ds.p50).toFixed(2)} ms`);
    console.log(`gateway CPU per request ≈ ${(r.cpuUsPerReq - d.cpuUsPerReq).toFixed(0)} µs (router + 4 peers + their Redis/NATS clients, in this process)`);
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
