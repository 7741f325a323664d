import { createRandom, streamSeed, type Random } from './prng';
import { isZero } from './latency';
import { resolveDeployment, STATUS_TO_KIND, type DeploymentSettings, type FaultKind, type Scenario } from './scenario';

/** Everything the hot path needs about one deployment, resolved once per scenario load. */
export interface DeploymentRuntime {
  name: string;
  /** Model name reported in responses. */
  model: string;
  settings: DeploymentSettings;
  /** Cumulative thresholds: a draw u < upTo picks that kind. */
  faultTable: { kind: FaultKind; upTo: number }[];
  outages: { from: number; to: number; kind: FaultKind }[];
  zeroLatency: boolean;
  faultRandom: Random;
  latencyRandom: Random;
  streamRandom: Random;
}

function createRuntime(scenario: Scenario, name: string, loadedAt: number): DeploymentRuntime {
  const settings = resolveDeployment(scenario, name);
  let upTo = 0;
  const faultTable: DeploymentRuntime['faultTable'] = [];
  for (const [kind, rate] of Object.entries(settings.faults) as [FaultKind, number][]) {
    if (rate > 0) faultTable.push({ kind, upTo: (upTo += rate) });
  }
  const toEpoch = (t: number | string) => (typeof t === 'number' ? loadedAt + t : Date.parse(t));
  return {
    name,
    model: settings.model ?? name,
    settings,
    faultTable,
    outages: settings.outages.map((w) => ({
      from: toEpoch(w.from),
      to: toEpoch(w.to),
      kind: w.kind ?? (w.status !== undefined ? STATUS_TO_KIND[w.status]! : 'unavailable'),
    })),
    zeroLatency: isZero(settings.latency.firstToken) && isZero(settings.latency.perToken),
    // Separate streams per purpose: enabling latency must not change which requests fail.
    faultRandom: createRandom(streamSeed(scenario.seed, name, 'faults')),
    latencyRandom: createRandom(streamSeed(scenario.seed, name, 'latency')),
    streamRandom: createRandom(streamSeed(scenario.seed, name, 'stream')),
  };
}

/**
 * The loaded scenario plus per-deployment runtime state. Outage windows given
 * in relative milliseconds count from `loadedAt` (process start for the CLI's
 * scenario, or the moment a new scenario was PUT).
 */
export function createScenarioState(scenario: Scenario, loadedAt: number) {
  const runtimes = new Map<string, DeploymentRuntime>();
  return {
    scenario,
    loadedAt,
    /** Runtime for a deployment; null when the scenario is strict and does not list it. */
    deployment(name: string): DeploymentRuntime | null {
      let rt = runtimes.get(name);
      if (!rt) {
        if (scenario.strictModels && !(name in scenario.deployments)) return null;
        rt = createRuntime(scenario, name, loadedAt);
        runtimes.set(name, rt);
      }
      return rt;
    },
    /** Forget PRNG positions so the same traffic sees the same faults again. */
    reseed(): void {
      runtimes.clear();
    },
  };
}
export type ScenarioState = ReturnType<typeof createScenarioState>;

/** One seeded draw per request, always taken, so the n-th request to a deployment always gets the same fate. */
export function drawFault(rt: DeploymentRuntime): FaultKind | null {
  const u = rt.faultRandom();
  for (const entry of rt.faultTable) if (u < entry.upTo) return entry.kind;
  return null;
}

export function activeOutage(rt: DeploymentRuntime, now: number): FaultKind | null {
  for (const w of rt.outages) if (now >= w.from && now < w.to) return w.kind;
  return null;
}

/** Value for `x-should-retry` on a fault answer, or undefined when the scenario does not send it. */
export function shouldRetryHeader(settings: DeploymentSettings, kind: FaultKind): string | undefined {
  const flag = settings.shouldRetry;
  if (flag === null) return undefined;
  if (typeof flag === 'boolean') return flag ? 'true' : 'false';
  const v = flag[kind];
  return v === undefined ? undefined : v ? 'true' : 'false';
}
