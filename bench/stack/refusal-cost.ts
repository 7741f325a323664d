/**
 * `npm run bench -- refusals [--seconds 4] [--rounds 2] [--callers 8] [--ref <commit>]`
 *
 * The router's CPU per call for each way a call can end, from /proc, over
 * the built production topology (stack-processes.ts) in front of the stack
 * bench's mock upstream, driven by the lean gRPC caller (grpc-caller.ts),
 * `--callers` calling again at once (at most as many as the places, 4, for
 * every kind but `shed`: those calls take a place in the handler):
 * - admitted: the call goes to the upstream and is answered;
 * - shed: refused by the in-flight bound (RESOURCE_EXHAUSTED,
 *   ROUTER_OVERLOADED), while every place (ROUTER_MAX_IN_FLIGHT =
 *   ROUTER_MIN_IN_FLIGHT = 4) is held by calls to an upstream that never
 *   answers;
 * - unknown route (INVALID_ARGUMENT) and bad key (UNAUTHENTICATED): refused by the
 *   router's own checks.
 * The work per call is fixed, so unlike the stack bench's rows the figures
 * hold whatever else the two cores are doing. An overloaded router spends
 * most of its time refusing: the shed figure is what the excess costs it.
 * `--ref <commit>` runs that commit's build in alternate rounds.
 */
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import { Role, RouterService } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { processCpuMs, spawnProcess } from '@switchyard/testing';
import { buildRef, buildServices } from '../../scripts/build';
import { positiveArg, stringArg } from '../args';
import { createGrpcCaller } from './grpc-caller';
import { BENCH_KEY, benchDeploymentYaml, benchGatewayYaml, startStackProcesses, type StackProcesses } from './stack-processes';

const SECONDS = positiveArg('seconds', 4);
const ROUNDS = positiveArg('rounds', 2);
const CALLERS = positiveArg('callers', 8);
const REF = stringArg('ref');
const PLACES = 4;
const DEADLINE_MS = 10_000;

const KINDS = {
  admitted: { route: 'bench', key: BENCH_KEY, expect: status.OK },
  shed: { route: 'bench', key: BENCH_KEY, expect: status.RESOURCE_EXHAUSTED },
  'unknown route': { route: 'no-such-route', key: BENCH_KEY, expect: status.INVALID_ARGUMENT },
  'bad key': { route: 'bench', key: 'sk-not-a-key', expect: status.UNAUTHENTICATED },
} as const;
type Kind = keyof typeof KINDS;

const request = (route: string) => ({ route, messages: [{ role: Role.USER, content: 'Say ok.' }], params: { maxTokens: 16 } });

/** Router µs of CPU per call, and calls/s, for one kind over one window. */
async function measureKind(stack: StackProcesses, kind: Kind): Promise<{ us: number; rps: number }> {
  const { route, key, expect } = KINDS[kind];
  const caller = createGrpcCaller(stack.address, RouterService.method.complete, request(route), { 'x-api-key': key }, DEADLINE_MS);
  const loop = async (until: number) => {
    let n = 0;
    while (performance.now() < until) {
      const o = await caller.call();
      if (o.code !== expect) throw new Error(`${kind}: expected status ${status[expect]}, got ${status[o.code] ?? o.code}: ${o.message}`);
      n += 1;
    }
    return n;
  };
  // Every kind but `shed` takes a place in the handler: never more callers than places, so none is shed.
  const callers = kind === 'shed' ? CALLERS : Math.min(CALLERS, PLACES);
  await Promise.all(Array.from({ length: callers }, () => loop(performance.now() + 1_000)));
  const cpu0 = processCpuMs(stack.pids.router!);
  const t0 = performance.now();
  const counts = await Promise.all(Array.from({ length: callers }, () => loop(performance.now() + SECONDS * 1000)));
  const wallMs = performance.now() - t0;
  const n = counts.reduce((a, b) => a + b, 0);
  caller.close();
  return { us: ((processCpuMs(stack.pids.router!) - cpu0) * 1000) / n, rps: (n / wallMs) * 1000 };
}

/** Takes every place with calls to the upstream that never answers, for `ms`; the function returned resolves once the router has every place free again. */
async function holdPlaces(stack: StackProcesses, ms: number): Promise<() => Promise<void>> {
  const holder = createGrpcCaller(stack.address, RouterService.method.complete, request('hang'), { 'x-api-key': BENCH_KEY }, ms);
  const held = Array.from({ length: PLACES }, () => holder.call());
  const probe = createGrpcCaller(stack.address, RouterService.method.complete, request('bench'), { 'x-api-key': BENCH_KEY }, DEADLINE_MS);
  // Held once a call is refused.
  for (let i = 0; (await probe.call()).code !== status.RESOURCE_EXHAUSTED; i++) {
    if (i > 200) throw new Error('the holding calls never took every place');
    await new Promise((r) => setTimeout(r, 10));
  }
  return async () => {
    await Promise.all(held);
    holder.close();
    // The holders' deadlines end their calls at the caller first; the router frees the places a moment later.
    for (let i = 0; (await probe.call()).code !== status.OK; i++) {
      if (i > 500) throw new Error('the router never gave the held places back');
      await new Promise((r) => setTimeout(r, 10));
    }
    probe.close();
  };
}

async function main() {
  await buildServices(['router', 'limiter', 'breaker', 'budget', 'cache']);
  const mock = await spawnProcess({ entry: resolve(__dirname, 'mock-upstream.ts'), readyTimeoutMs: 60_000 });
  const hang: Server = createServer(() => {}); // accepts requests and never answers them
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
  const hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;
  const yaml = benchGatewayYaml(`http://127.0.0.1:${mock.port}`, [benchDeploymentYaml('hang', hangUrl, '\n    timeoutMs: 120000')]);
  const routerEnv = { ROUTER_MAX_IN_FLIGHT: String(PLACES), ROUTER_MIN_IN_FLIGHT: String(PLACES) };
  const builds: { name: string; dist?: string }[] = [{ name: 'this checkout' }];
  if (REF) builds.push({ name: REF, dist: await buildRef(REF, ['router', 'limiter', 'breaker', 'budget', 'cache']) });
  const stacks = await Promise.all(builds.map((b) => startStackProcesses({ yaml, routerEnv, ...(b.dist ? { dist: b.dist } : {}) })));
  const results = builds.map(() => new Map<Kind, { us: number; rps: number }[]>());
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, stack] of stacks.entries()) {
        for (const kind of Object.keys(KINDS) as Kind[]) {
          const release = kind === 'shed' ? await holdPlaces(stack, SECONDS * 1000 + 3_000) : undefined;
          const r = await measureKind(stack, kind);
          await release?.();
          results[i]!.set(kind, [...(results[i]!.get(kind) ?? []), r]);
          console.error(`round ${round + 1}/${ROUNDS} ${builds[i]!.name} ${kind}: ${r.us.toFixed(0)} µs, ${r.rps.toFixed(0)} calls/s`);
        }
      }
    }
  } finally {
    await Promise.all(stacks.map((s) => s.stop()));
    hang.closeAllConnections();
    hang.close();
    await mock.stop();
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const cell = (rs: { us: number; rps: number }[]) => `${median(rs.map((r) => r.us)).toFixed(0)} [${Math.min(...rs.map((r) => r.us)).toFixed(0)}–${Math.max(...rs.map((r) => r.us)).toFixed(0)}] (${median(rs.map((r) => r.rps)).toFixed(0)}/s)`;
  console.log(`\nrouter CPU per call, µs: median [min–max] of ${ROUNDS} round(s) of ${SECONDS} s, ${CALLERS} callers (shed; the others ${Math.min(CALLERS, PLACES)}, the places), calls/s in brackets; Node ${process.version}`);
  console.log(`| call ends | ${builds.map((b) => b.name).join(' | ')} |`);
  console.log(`|---|${builds.map(() => '---').join('|')}|`);
  for (const kind of Object.keys(KINDS) as Kind[]) console.log(`| ${kind} | ${results.map((r) => cell(r.get(kind)!)).join(' | ')} |`);
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
