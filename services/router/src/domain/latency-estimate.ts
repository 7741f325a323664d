/**
 * Local exponentially weighted moving average of successful attempt latency
 * per deployment: the fallback when the breaker's health replica has no
 * latency yet (new deployment, NATS down). Only successes feed it: a failure's
 * latency says nothing about how long an answer takes.
 */
export interface LatencyEstimate {
  observe(deployment: string, latencyMs: number): void;
  /** Current estimate, 0 when nothing was observed. */
  get(deployment: string): number;
}

export function createLatencyEstimate(alpha = 0.2): LatencyEstimate {
  if (!(alpha > 0 && alpha <= 1)) throw new Error(`latency estimate alpha: must be in (0, 1], got ${alpha}`);
  const values = new Map<string, number>();
  return {
    observe(deployment, latencyMs) {
      if (!Number.isFinite(latencyMs) || latencyMs < 0) return;
      const prev = values.get(deployment);
      values.set(deployment, prev === undefined ? latencyMs : prev + alpha * (latencyMs - prev));
    },
    get: (deployment) => values.get(deployment) ?? 0,
  };
}

/** The latency the deadline check uses: the cluster-wide p50 when the breaker knows it, else this replica's EWMA. */
export function expectedLatency(replicaP50Ms: number | undefined, local: number): number {
  return replicaP50Ms && replicaP50Ms > 0 ? replicaP50Ms : local;
}
