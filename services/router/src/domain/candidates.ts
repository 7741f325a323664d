import type { DeploymentConfig, RouteConfig } from '@switchyard/config';

/** A random number in [0, 1); injected so selection and jitter are reproducible in tests. */
export type Rng = () => number;

/** One deployment a route may use, with its config. */
export interface Candidate {
  /** Deployment id (config key): limiter keys, breaker state and NATS subjects use it. */
  name: string;
  deployment: DeploymentConfig;
  priority: number;
  weight: number;
}

/** What the local health and quota replicas know about a deployment. */
export interface DeploymentView {
  circuit: 'closed' | 'open' | 'half-open' | 'unknown';
  /** When OPEN: the breaker may move to HALF_OPEN at this instant (0 = unknown). */
  openUntil: number;
  /** CLOSED but slow. */
  slow: boolean;
  /** Upstream quota exhausted (insufficient_quota): unusable until recovered. */
  unavailable: boolean;
  /** The limiter knows this deployment cannot admit before this instant (cooldown or exhausted window); 0 = none. */
  blockedUntil: number;
  /** Why blockedUntil is set, for notes. */
  blockedReason?: string;
  /** Recent median latency, 0 when unknown. */
  p50LatencyMs: number;
}

export const UNKNOWN_VIEW: DeploymentView = {
  circuit: 'unknown',
  openUntil: 0,
  slow: false,
  unavailable: false,
  blockedUntil: 0,
  p50LatencyMs: 0,
};

export interface SkippedCandidate {
  name: string;
  reason: string;
  /** When the skip reason ends (quota windows, cooldowns), for a retry-after hint; 0 when unknown. */
  retryAt: number;
  /** Skipped for quota reasons (vs health), so the final error can be RESOURCE_EXHAUSTED. */
  quota: boolean;
  /** Set when skipped because its context window cannot hold the prompt: the estimated prompt tokens. */
  promptTokens?: number;
}

export interface CandidatePlan {
  /** Candidates to try, in order. */
  usable: Candidate[];
  skipped: SkippedCandidate[];
}

/**
 * Weighted random order without replacement: each pick chooses among the
 * remaining candidates with probability proportional to weight. So weights
 * decide who goes first, and the rest stay available as same-priority fallbacks.
 */
export function weightedShuffle<T extends { weight: number }>(items: readonly T[], rng: Rng): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (pool.length > 0) {
    const total = pool.reduce((sum, c) => sum + c.weight, 0);
    let r = rng() * total;
    let index = pool.length - 1;
    for (let i = 0; i < pool.length; i++) {
      r -= pool[i]!.weight;
      if (r < 0) {
        index = i;
        break;
      }
    }
    out.push(pool.splice(index, 1)[0]!);
  }
  return out;
}

/** Route → candidates: priority groups ascending, weighted random order within a group. */
export function orderCandidates(
  route: RouteConfig,
  deployments: Readonly<Record<string, DeploymentConfig>>,
  rng: Rng,
): Candidate[] {
  const groups = new Map<number, Candidate[]>();
  for (const c of route.candidates) {
    const deployment = deployments[c.deployment];
    if (!deployment) continue; // config validation guarantees this; be defensive anyway
    const group = groups.get(c.priority) ?? [];
    group.push({ name: c.deployment, deployment, priority: c.priority, weight: c.weight });
    groups.set(c.priority, group);
  }
  return [...groups.keys()].sort((a, b) => a - b).flatMap((p) => weightedShuffle(groups.get(p)!, rng));
}

/** Lower runs earlier within a priority group: healthy first, then slow, then half-open (a probe may fail). */
function preferenceTier(view: DeploymentView, now: number): number {
  if (view.circuit === 'half-open' || (view.circuit === 'open' && view.openUntil > 0 && view.openUntil <= now)) return 2;
  if (view.slow) return 1;
  return 0;
}

/**
 * Applies the local replicas (no network hop): skips OPEN deployments and those
 * known to be out of quota (all but the first to recover, kept last), and
 * within each priority group prefers healthy over slow over half-open
 * (stable, so the weighted order is kept among equals).
 */
export function planCandidates(ordered: readonly Candidate[], viewOf: (name: string) => DeploymentView, now: number): CandidatePlan {
  const skipped: SkippedCandidate[] = [];
  const kept: { c: Candidate; tier: number; index: number }[] = [];
  const blocked: Candidate[] = [];
  ordered.forEach((c, index) => {
    const view = viewOf(c.name);
    if (view.circuit === 'open' && !(view.openUntil > 0 && view.openUntil <= now)) {
      skipped.push({ name: c.name, reason: 'circuit open', retryAt: view.openUntil, quota: false });
      return;
    }
    if (view.unavailable) {
      skipped.push({ name: c.name, reason: 'quota exhausted upstream (unavailable)', retryAt: 0, quota: true });
      return;
    }
    if (view.blockedUntil > now) {
      skipped.push({ name: c.name, reason: view.blockedReason ?? 'quota exhausted', retryAt: view.blockedUntil, quota: true });
      blocked.push(c);
      return;
    }
    kept.push({ c, tier: preferenceTier(view, now), index });
  });
  kept.sort((a, b) => a.c.priority - b.c.priority || a.tier - b.tier || a.index - b.index);
  const usable = preferFaster(kept, viewOf);
  // Out of quota only for a while: the one that recovers first stays as the
  // last resort, behind everything usable now, so a call that would otherwise
  // fail can wait its turn in the limiter's queue (within its deadline). The
  // limiter, not this replica's view, decides when it is admitted: no
  // upstream attempt is wasted on a deployment known to be exhausted.
  const soonest = blocked.sort((a, b) => viewOf(a.name).blockedUntil - viewOf(b.name).blockedUntil)[0];
  if (soonest) {
    usable.push(soonest);
    skipped.splice(skipped.findIndex((s) => s.name === soonest.name), 1);
  }
  return { usable, skipped };
}

/**
 * Among equals — same priority, same health tier, same weight — the one with
 * the lower recent p50 (health replica) goes first; deployments without a
 * known latency keep their weighted position after the measured ones. Only
 * the slots equals already occupy are reordered, so weights between unequal
 * candidates and the tier order are untouched.
 */
function preferFaster(kept: readonly { c: Candidate; tier: number }[], viewOf: (name: string) => DeploymentView): Candidate[] {
  const out = kept.map((k) => k.c);
  const groups = new Map<string, number[]>();
  kept.forEach((k, i) => {
    const key = `${k.c.priority}|${k.tier}|${k.c.weight}`;
    const slots = groups.get(key) ?? [];
    slots.push(i);
    groups.set(key, slots);
  });
  for (const slots of groups.values()) {
    if (slots.length < 2) continue;
    const latency = (c: Candidate) => viewOf(c.name).p50LatencyMs || Number.POSITIVE_INFINITY;
    const members = slots.map((i) => kept[i]!.c).sort((a, b) => (latency(a) === latency(b) ? 0 : latency(a) < latency(b) ? -1 : 1));
    slots.forEach((slot, j) => (out[slot] = members[j]!));
  }
  return out;
}

/**
 * Skips, before anything is sent, every usable candidate whose context window
 * is smaller than the estimated prompt: its provider would only answer 400
 * context_length_exceeded one round trip later. The others keep their order.
 */
export function skipSmallContextWindows(plan: CandidatePlan, promptTokens: (c: Candidate) => number): CandidatePlan {
  const usable: Candidate[] = [];
  const skipped = [...plan.skipped];
  for (const c of plan.usable) {
    const tokens = promptTokens(c);
    if (tokens > c.deployment.contextWindow) {
      skipped.push({ name: c.name, reason: `context window of ${c.deployment.contextWindow} tokens is smaller than the estimated prompt of ${tokens}`, retryAt: 0, quota: false, promptTokens: tokens });
    } else {
      usable.push(c);
    }
  }
  return { usable, skipped };
}
