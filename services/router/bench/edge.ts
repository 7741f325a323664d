/**
 * `npm run bench -- edge [--seconds 5] [--rate 300] [--concurrency 32] [--stage-n 400]`
 *
 * What the HTTP edge adds over the gRPC path, in one run, against the same
 * router (all four peers, Redis, NATS, in this process) and the simulator (its
 * own process, zero latency): the router's Complete over gRPC (grpc-js client)
 * beside POST /v1/chat/completions over HTTP/1.1 keep-alive (node:http client),
 * one call at a time alternating (no queueing: the added latency itself), at a
 * fixed rate and at saturation. CPU per request is this process's user+system
 * time per request: router, peers and the load generator's client together, so
 * edge-minus-gRPC is the HTTP server plus client plus JSON translation.
 *
 * `--portkey <path of @portkey-ai/gateway's build/start-server.js>` (install it
 * anywhere: `npm install --prefix /tmp/pk @portkey-ai/gateway`) adds Portkey's
 * open-source gateway, in its own process, forwarding to the same simulator
 * (x-portkey-provider openai, x-portkey-custom-host): the same rows, its CPU
 * read from /proc for its process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Role } from '@switchyard/contracts';
import { SIM_KEY, startStack } from '../test/stack';
import { benchGatewayYaml, numberArg, fixedRate as runFixedRate, quantile, saturate as runSaturate, type LoadResult } from './load-driver';

const SECONDS = numberArg('--seconds', 5);
const RATE = numberArg('--rate', 300);
const CONCURRENCY = numberArg('--concurrency', 32);
const STAGE_N = numberArg('--stage-n', 400);
const KEY = 'bench-key';
const PORTKEY = (() => {
  const i = process.argv.indexOf('--portkey');
  return i >= 0 ? process.argv[i + 1] : undefined;
})();

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** CPU time (µs) a child process has used so far (Linux /proc; utime + stime in clock ticks of 10 ms). */
function childCpuUs(child: ChildProcess): number {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function startPortkey(script: string): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [script, `--port=${port}`, '--headless'], { env: { ...process.env, NODE_ENV: 'production' }, stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
    if (up) return { port, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`Portkey gateway did not start from ${script}`);
}

const yaml = (sim: string) => benchGatewayYaml(sim, KEY);
type Result = LoadResult;
const fixedRate = (call: (i: number) => Promise<unknown>) => runFixedRate(call, { seconds: SECONDS, rate: RATE });
const saturate = (call: (i: number) => Promise<unknown>) => runSaturate(call, { seconds: SECONDS, concurrency: CONCURRENCY });

/** p50/p99 of each path taken one call at a time, alternating, so load from elsewhere hits both alike. */
async function oneAtATime(calls: Record<string, (i: number) => Promise<unknown>>): Promise<Record<string, { p50: number; p99: number; cpuUs: number }>> {
  const out: Record<string, { lat: number[]; cpu: number }> = {};
  for (const name of Object.keys(calls)) out[name] = { lat: [], cpu: 0 };
  for (let i = -50; i < STAGE_N; i++) {
    for (const [name, call] of Object.entries(calls)) {
      const cpu0 = process.cpuUsage();
      const start = performance.now();
      await call(i);
      if (i < 0) continue;
      out[name]!.lat.push(performance.now() - start);
      const cpu = process.cpuUsage(cpu0);
      out[name]!.cpu += cpu.user + cpu.system;
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([name, { lat, cpu }]) => {
      const s = lat.sort((a, b) => a - b);
      return [name, { p50: quantile(s, 0.5), p99: quantile(s, 0.99), cpuUs: cpu / s.length }];
    }),
  );
}

async function main() {
  const stack = await startStack(yaml, { seed: 1, defaults: { limits: { rpm: 100_000_000, tpm: 100_000_000_000 } }, deployments: { 'bench-m': {} } }, { LOG_LEVEL: 'silent' });
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  try {
    const grpc = (i: number) => stack.client.complete({ route: 'bench', messages: [{ role: Role.USER, content: `bench ${i}` }], params: { maxTokens: 16 } }, { metadata: { 'x-api-key': KEY } });
    const post = (port: number, model: string, headers: Record<string, string>) => (i: number) =>
      new Promise<void>((resolve, reject) => {
        const body = JSON.stringify({ model, messages: [{ role: 'user', content: `bench ${i}` }], max_tokens: 16 });
        const req = request(
          { agent, host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString()}`));
              JSON.parse(Buffer.concat(chunks).toString());
              resolve();
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const http = post(stack.router.httpPort, 'bench', { authorization: `Bearer ${KEY}` });
    for (let i = 0; i < 200; i++) await Promise.all([grpc(-i), http(-i)]);
    const one = await oneAtATime({ grpc, http });
    const rows: [string, Result][] = [
      [`gRPC Complete @ ${RATE}/s`, await fixedRate(grpc)],
      [`HTTP edge     @ ${RATE}/s`, await fixedRate(http)],
      [`gRPC Complete saturated (${CONCURRENCY} conc)`, await saturate(grpc)],
      [`HTTP edge     saturated (${CONCURRENCY} conc)`, await saturate(http)],
    ];
    console.log(`\nedge bench: ${SECONDS} s per row, simulator zero latency, Node ${process.version}`);
    console.log(`\none call at a time (${STAGE_N} each, alternating):`);
    console.log('| path | p50 ms | p99 ms | CPU µs/req (this process) |');
    console.log('|---|---|---|---|');
    for (const [name, r] of Object.entries(one)) console.log(`| ${name} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.cpuUs.toFixed(0)} |`);
    console.log(`edge added, one at a time: p50 ${(one.http!.p50 - one.grpc!.p50 >= 0 ? '+' : '')}${(one.http!.p50 - one.grpc!.p50).toFixed(3)} ms (target ≤ 0.2 ms), CPU ${(one.http!.cpuUs - one.grpc!.cpuUs).toFixed(0)} µs/req`);
    console.log('\n| path | requests | errors | p50 ms | p99 ms | req/s | CPU µs/req (this process) |');
    console.log('|---|---|---|---|---|---|---|');
    for (const [name, r] of rows) console.log(`| ${name} | ${r.n} | ${r.errors} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.rps.toFixed(0)} | ${r.cpuUsPerReq.toFixed(0)} |`);
    const [g, h, gs, hs] = rows.map(([, x]) => x) as [Result, Result, Result, Result];
    console.log(`\nat ${RATE}/s: edge p50 ${(h.p50 - g.p50).toFixed(2)} ms, p99 ${(h.p99 - g.p99).toFixed(2)} ms vs gRPC; CPU ${(h.cpuUsPerReq - g.cpuUsPerReq).toFixed(0)} µs/req`);
    console.log(`saturation: edge ${hs.rps.toFixed(0)} req/s vs gRPC ${gs.rps.toFixed(0)} req/s (ratio ${(hs.rps / gs.rps).toFixed(2)})`);
    if (PORTKEY) {
      const pk = await startPortkey(PORTKEY);
      try {
        const portkey = post(pk.port, 'bench-m', { authorization: `Bearer ${SIM_KEY}`, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${stack.sim.url}/v1` });
        for (let i = 0; i < 200; i++) await portkey(-i);
        const withCpu = async (f: () => Promise<Result>) => {
          const cpu0 = childCpuUs(pk.child);
          const r = await f();
          return { ...r, pkCpu: (childCpuUs(pk.child) - cpu0) / Math.max(1, r.n + r.errors) };
        };
        const fixed = await withCpu(() => fixedRate(portkey));
        const sat = await withCpu(() => saturate(portkey));
        console.log('\nPortkey gateway (its own process; no limiter, budget, cache, breaker or idempotency on this path):');
        console.log('| path | requests | errors | p50 ms | p99 ms | req/s | CPU µs/req (load generator) | CPU µs/req (Portkey process) |');
        console.log('|---|---|---|---|---|---|---|---|');
        console.log(`| Portkey @ ${RATE}/s | ${fixed.n} | ${fixed.errors} | ${fixed.p50.toFixed(2)} | ${fixed.p99.toFixed(2)} | ${fixed.rps.toFixed(0)} | ${fixed.cpuUsPerReq.toFixed(0)} | ${fixed.pkCpu.toFixed(0)} |`);
        console.log(`| Portkey saturated (${CONCURRENCY} conc) | ${sat.n} | ${sat.errors} | ${sat.p50.toFixed(2)} | ${sat.p99.toFixed(2)} | ${sat.rps.toFixed(0)} | ${sat.cpuUsPerReq.toFixed(0)} | ${sat.pkCpu.toFixed(0)} |`);
        console.log(`ratios, edge / Portkey: req/s at saturation ${(hs.rps / sat.rps).toFixed(2)}, p50 at ${RATE}/s ${(h.p50 / fixed.p50).toFixed(2)}, p99 ${(h.p99 / fixed.p99).toFixed(2)}`);
      } finally {
        pk.child.kill();
      }
    }
  } finally {
    agent.destroy();
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
