/**
 * `npm run bench -- providers [--rounds 5] [--calls 2000] [--concurrency 1,16]`
 *
 * What one provider call costs on the caller's side, against the stack
 * bench's mock upstream (bench/stack/mock-upstream.ts, its own process,
 * answers at once): the bare POST through the global fetch (undici) and
 * through node:http, the openai SDK on each of them, and our adapter's
 * complete() (translation, SDK, response mapping) on the global fetch (what
 * it used before) and on its default, providerFetch() (node:http over shared
 * keep-alive agents).
 * The variants run interleaved, `--rounds` times `--calls` calls each, at each
 * concurrency (closed loop); the table gives, per variant, the median over
 * rounds of CPU µs per call (this process's user+system time, the mock's not
 * counted) and of the p50 / p99 latency. CPU per call is the steadier figure
 * on a shared machine.
 */
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { request } from 'node:http';
import OpenAI from 'openai';
import { spawnProcess } from '@switchyard/testing';
import { createProviderAdapter, type ChatRequest } from '../src/index';
import { providerFetch, sharedAgents } from '../src/http-fetch';

const list = (flag: string, fallback: number[]) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1]!.split(',').map(Number) : fallback;
};
const ROUNDS = list('--rounds', [5])[0]!;
const CALLS = list('--calls', [2000])[0]!;
const CONCURRENCY = list('--concurrency', [1, 16]);

const REQUEST: ChatRequest = { messages: [{ role: 'user', content: 'Say ok.' }], maxTokens: 16 };
const API_KEY = 'sk-bench-upstream';

type Call = () => Promise<unknown>;

function variants(baseUrl: string): Record<string, Call> {
  const url = `${baseUrl}/chat/completions`;
  const body = JSON.stringify({ model: 'bench-m', messages: [{ role: 'user', content: 'Say ok.' }], max_tokens: 16 });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` };
  const params = { model: 'bench-m', messages: [{ role: 'user' as const, content: 'Say ok.' }], max_tokens: 16 };
  const sdk = new OpenAI({ apiKey: API_KEY, baseURL: baseUrl, maxRetries: 0 });
  const sdkHttp = new OpenAI({ apiKey: API_KEY, baseURL: baseUrl, maxRetries: 0, fetch: providerFetch() });
  const target = { name: 'bench', provider: 'openai' as const, baseUrl, model: 'bench-m', apiKey: API_KEY };
  const adapterGlobalFetch = createProviderAdapter({ ...target, fetch: globalThis.fetch });
  const adapter = createProviderAdapter(target);
  const agent = sharedAgents().http;
  return {
    'bare fetch POST': async () => (await fetch(url, { method: 'POST', headers, body })).json(),
    'bare node:http POST': () =>
      new Promise((resolve, reject) => {
        const req = request(url, { method: 'POST', headers, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
        });
        req.on('error', reject);
        req.end(body);
      }),
    'openai SDK, global fetch': () => sdk.chat.completions.create(params).withResponse(),
    'openai SDK, providerFetch': () => sdkHttp.chat.completions.create(params).withResponse(),
    'adapter, global fetch (before)': () => adapterGlobalFetch.complete(REQUEST, { timeoutMs: 30_000 }),
    'adapter, default (providerFetch)': () => adapter.complete(REQUEST, { timeoutMs: 30_000 }),
  };
}

interface Row {
  cpuMicros: number;
  p50: number;
  p99: number;
}

async function run(call: Call, calls: number, concurrency: number): Promise<Row> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      next++;
      const t0 = performance.now();
      await call();
      latencies.push(performance.now() - t0);
    }
  };
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { cpuMicros: (cpu.user + cpu.system) / calls, p50: at(0.5), p99: at(0.99) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const upstream = await spawnProcess({ entry: resolve(__dirname, '../../../bench/stack/mock-upstream.ts'), readyTimeoutMs: 60_000 });
  try {
    const calls = variants(`http://127.0.0.1:${upstream.port}/v1`);
    for (const call of Object.values(calls)) await run(call, 200, 4); // warm-up: JIT and keep-alive sockets
    const rows: string[] = [];
    for (const concurrency of CONCURRENCY) {
      const results: Record<string, Row[]> = Object.fromEntries(Object.keys(calls).map((k) => [k, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const [name, call] of Object.entries(calls)) results[name]!.push(await run(call, CALLS, concurrency));
      }
      const bare = median(results['bare fetch POST']!.map((r) => r.cpuMicros));
      for (const [name, rs] of Object.entries(results)) {
        const cpu = median(rs.map((r) => r.cpuMicros));
        rows.push(
          `| ${concurrency} | ${name} | ${cpu.toFixed(0)} (${(cpu / bare).toFixed(2)}×) | ${median(rs.map((r) => r.p50)).toFixed(2)} | ${median(rs.map((r) => r.p99)).toFixed(2)} |`,
        );
      }
    }
    console.log(`\nprovider call: ${ROUNDS} interleaved rounds of ${CALLS} calls per variant; medians; Node ${process.version}`);
    console.log('| in flight | variant | CPU µs per call (× bare fetch) | p50 ms | p99 ms |\n|---|---|---|---|---|');
    for (const row of rows) console.log(row);
  } finally {
    await upstream.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
