/**
 * The open- and closed-loop load the router's in-process benches (complete.ts,
 * edge.ts) drive, and the one-route gateway config they measure. CPU and
 * event-loop utilisation are this process's own: router, peers and load
 * generator together.
 */
import { performance } from 'node:perf_hooks';
import { hashApiKey } from '@switchyard/config';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';

export interface LoadResult {
  n: number;
  errors: number;
  p50: number;
  p99: number;
  rps: number;
  cpuUsPerReq: number;
  /** Event-loop utilisation of this process over the row. */
  elu: number;
}

/** The number after `flag` on the command line, or `fallback`. */
export const numberArg = (flag: string, fallback: number) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

export const quantile = (sorted: number[], x: number) => sorted[Math.min(sorted.length - 1, Math.floor(x * sorted.length))] ?? NaN;

/** One deployment on the simulator, one uncacheable route, one tenant whose key is `key`. */
export const benchGatewayYaml = (sim: string, key: string) => `
deployments:
  bench: ${simDeploymentYaml(sim, 'bench-m', { price: CHEAP_PRICE })}
routes:
  bench: { cacheable: false, candidates: [{ deployment: bench }] }
tenants:
  bench:
    apiKeys: [{ id: bench-main, sha256: ${hashApiKey(key)} }]
`;

function measure() {
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const lat: number[] = [];
  let errors = 0;
  return {
    t0,
    ok: (start: number) => void lat.push(performance.now() - start),
    failed: () => void (errors += 1),
    result(): LoadResult {
      const cpu = process.cpuUsage(cpu0);
      const s = [...lat].sort((a, b) => a - b);
      return {
        n: s.length,
        errors,
        p50: quantile(s, 0.5),
        p99: quantile(s, 0.99),
        rps: (s.length / (performance.now() - t0)) * 1000,
        cpuUsPerReq: (cpu.user + cpu.system) / Math.max(1, s.length + errors),
        elu: performance.eventLoopUtilization(elu0).utilization,
      };
    },
  };
}

/** Open loop: `rate` calls a second for `seconds`, each started on schedule whatever the earlier ones are doing. */
export async function fixedRate(call: (i: number) => Promise<unknown>, { seconds, rate }: { seconds: number; rate: number }): Promise<LoadResult> {
  const m = measure();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < Math.round(seconds * rate); i++) {
    const wait = m.t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const start = performance.now();
    inflight.push(call(i).then(() => m.ok(start), m.failed));
  }
  await Promise.all(inflight);
  return m.result();
}

/** Closed loop: `concurrency` callers, each starting its next call when the last ends, for `seconds`. */
export async function saturate(call: (i: number) => Promise<unknown>, { seconds, concurrency }: { seconds: number; concurrency: number }): Promise<LoadResult> {
  const m = measure();
  const until = m.t0 + seconds * 1000;
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const start = performance.now();
        try {
          await call(i++);
          m.ok(start);
        } catch {
          m.failed();
        }
      }
    }),
  );
  return m.result();
}
