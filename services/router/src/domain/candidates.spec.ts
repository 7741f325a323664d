import type { RouteConfig } from '@switchyard/config';
import { orderCandidates, planCandidates, skipSmallContextWindows, UNKNOWN_VIEW, weightedShuffle, type DeploymentView } from './candidates';
import { candidate, deployment, fixedRng } from './test-fixtures';

function route(candidates: { deployment: string; priority?: number; weight?: number }[]): RouteConfig {
  return {
    candidates: candidates.map((c) => ({ deployment: c.deployment, priority: c.priority ?? 0, weight: c.weight ?? 1 })),
    allowStaleOnError: true,
    fallbackOnContentFilter: false,
    cacheable: true,
  };
}

const deployments = { a: deployment(), b: deployment(), c: deployment(), d: deployment() };

describe('orderCandidates', () => {
  it('orders priority groups ascending regardless of config order', () => {
    const order = orderCandidates(route([{ deployment: 'c', priority: 2 }, { deployment: 'a', priority: 0 }, { deployment: 'b', priority: 1 }]), deployments, fixedRng(0));
    expect(order.map((c) => c.name)).toEqual(['a', 'b', 'c']);
  });

  it('picks the first of a group in proportion to weight', () => {
    const r = route([{ deployment: 'a', weight: 3 }, { deployment: 'b', weight: 1 }]);
    // total 4: rng*4 < 3 selects a, otherwise b
    expect(orderCandidates(r, deployments, fixedRng(0.74)).map((c) => c.name)).toEqual(['a', 'b']);
    expect(orderCandidates(r, deployments, fixedRng(0.76)).map((c) => c.name)).toEqual(['b', 'a']);
  });

  it('keeps lower priority groups behind the whole higher group', () => {
    const r = route([{ deployment: 'a' }, { deployment: 'b' }, { deployment: 'c', priority: 1 }]);
    expect(orderCandidates(r, deployments, fixedRng(0.9)).map((c) => c.name)).toEqual(['b', 'a', 'c']);
  });
});

describe('weightedShuffle', () => {
  it('converges to the weight ratio over many draws', () => {
    let seed = 7;
    const rng = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    let firstA = 0;
    for (let i = 0; i < 4000; i++) if (weightedShuffle([{ id: 'a', weight: 9 }, { id: 'b', weight: 1 }], rng)[0]!.id === 'a') firstA++;
    expect(firstA / 4000).toBeGreaterThan(0.87);
    expect(firstA / 4000).toBeLessThan(0.93);
  });
});

describe('planCandidates', () => {
  const now = 1_000_000;
  const views: Record<string, Partial<DeploymentView>> = {};
  const viewOf = (name: string): DeploymentView => ({ ...UNKNOWN_VIEW, ...views[name] });
  afterEach(() => Object.keys(views).forEach((k) => delete views[k]));

  it('skips an OPEN deployment and says why', () => {
    views.a = { circuit: 'open', openUntil: now + 5000 };
    const plan = planCandidates([candidate('a'), candidate('b')], viewOf, now);
    expect(plan.usable.map((c) => c.name)).toEqual(['b']);
    expect(plan.skipped).toEqual([{ name: 'a', reason: 'circuit open', retryAt: now + 5000, quota: false }]);
  });

  it('keeps an OPEN deployment whose open period is over, behind healthy ones of its group', () => {
    views.a = { circuit: 'open', openUntil: now - 1 };
    const plan = planCandidates([candidate('a'), candidate('b')], viewOf, now);
    expect(plan.usable.map((c) => c.name)).toEqual(['b', 'a']);
  });

  it('skips deployments known unavailable or cooling down, as quota skips; the first to recover stays as the last resort', () => {
    views.a = { unavailable: true };
    views.b = { blockedUntil: now + 2000, blockedReason: 'cooling down after 429' };
    views.c = { blockedUntil: now + 900, blockedReason: 'rpm exhausted' };
    const plan = planCandidates([candidate('a'), candidate('b'), candidate('c'), candidate('d', {}, 1)], viewOf, now);
    // d (a lower priority, but usable now) goes before c, which is only worth a wait in the limiter's queue.
    expect(plan.usable.map((c) => c.name)).toEqual(['d', 'c']);
    expect(plan.skipped.map((s) => [s.name, s.reason, s.quota])).toEqual([
      ['a', 'quota exhausted upstream (unavailable)', true],
      ['b', 'cooling down after 429', true],
    ]);
  });

  it('never keeps an unavailable deployment (insufficient_quota) as a last resort: only an operator clears it', () => {
    views.a = { unavailable: true };
    expect(planCandidates([candidate('a')], viewOf, now).usable).toEqual([]);
  });

  it('does not skip a cooldown that has ended', () => {
    views.a = { blockedUntil: now };
    expect(planCandidates([candidate('a')], viewOf, now).usable).toHaveLength(1);
  });

  it('prefers healthy over slow over half-open within a priority group, never across groups', () => {
    views.a = { circuit: 'half-open' };
    views.b = { slow: true };
    const plan = planCandidates([candidate('a'), candidate('b'), candidate('c'), candidate('d', {}, 1)], viewOf, now);
    expect(plan.usable.map((c) => c.name)).toEqual(['c', 'b', 'a', 'd']);
  });
});

describe('planCandidates: latency among equals', () => {
  const now = 1_000_000;
  it('puts the lower p50 first among equal CLOSED candidates, unknown latency last, weights and priorities untouched', () => {
    const views: Record<string, Partial<DeploymentView>> = {
      a: { circuit: 'closed', p50LatencyMs: 900 },
      b: { circuit: 'closed', p50LatencyMs: 0 },
      c: { circuit: 'closed', p50LatencyMs: 120 },
      d: { circuit: 'closed', p50LatencyMs: 10 },
      e: { circuit: 'closed', p50LatencyMs: 5 },
    };
    const viewOf = (n: string): DeploymentView => ({ ...UNKNOWN_VIEW, ...views[n] });
    const plan = planCandidates([candidate('a'), candidate('b'), candidate('c'), candidate('d', {}, 0, 5), candidate('e', {}, 1)], viewOf, now);
    // a, b, c are equals (weight 1): c (120) before a (900) before b (unknown); d (weight 5) keeps its slot; e is a lower priority.
    expect(plan.usable.map((c) => c.name)).toEqual(['c', 'a', 'b', 'd', 'e']);
  });
});

describe('skipSmallContextWindows', () => {
  it('skips, before sending, every candidate whose context window is smaller than its estimated prompt, keeping the rest in order', () => {
    const plan = { usable: [candidate('tiny', { contextWindow: 30 }), candidate('big', { contextWindow: 1000 }), candidate('exact', { contextWindow: 60 })], skipped: [] };
    const out = skipSmallContextWindows(plan, () => 60);
    expect(out.usable.map((c) => c.name)).toEqual(['big', 'exact']);
    expect(out.skipped).toEqual([
      { name: 'tiny', reason: 'context window of 30 tokens is smaller than the estimated prompt of 60', retryAt: 0, quota: false, promptTokens: 60 },
    ]);
  });

  it('uses each candidate\'s own estimate (providers count the same prompt differently)', () => {
    const plan = { usable: [candidate('a', { contextWindow: 50 }), candidate('b', { contextWindow: 50 })], skipped: [] };
    const out = skipSmallContextWindows(plan, (c) => (c.name === 'a' ? 49 : 51));
    expect(out.usable.map((c) => c.name)).toEqual(['a']);
    expect(out.skipped.map((s) => s.name)).toEqual(['b']);
  });
});
