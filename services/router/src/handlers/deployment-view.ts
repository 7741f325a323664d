import { UNKNOWN_VIEW, type Candidate, type DeploymentView } from '../domain/candidates';
import { expectedLatency } from '../domain/latency-estimate';
import type { RouterContext } from '../router-context';

/** This replica's local knowledge of the deployments (no network hop): health and quota replicas, local breaker, latency. */
export type LocalView = Pick<RouterContext, 'health' | 'quota' | 'outcomes' | 'localBreaker' | 'clock'>;

/** The local circuit's verdict, only while the shared health view is out of reach (NATS and breaker both down). */
function localOpenUntil(local: LocalView, name: string): number | undefined {
  return local.outcomes.sharedHealthReachable() ? undefined : local.localBreaker.openUntil(name);
}

/** What step 4 (pick a deployment) knows about `name`: circuit, quota blocks, latency. */
export function deploymentView(local: LocalView, name: string): DeploymentView {
  const h = local.health.get(name);
  const q = local.quota.get(name);
  const view: DeploymentView = { ...UNKNOWN_VIEW };
  if (h) {
    view.circuit = h.circuit;
    view.openUntil = h.openUntil;
    view.slow = h.slow;
    view.p50LatencyMs = h.p50LatencyMs;
  }
  const localUntil = localOpenUntil(local, name);
  if (localUntil !== undefined) {
    view.circuit = 'open';
    view.openUntil = localUntil;
  }
  if (q) {
    view.unavailable = q.unavailable;
    if (q.cooldownUntil >= q.exhaustedUntil && q.cooldownUntil > 0) {
      view.blockedUntil = q.cooldownUntil;
      view.blockedReason = 'cooling down after an upstream 429';
    } else if (q.exhaustedUntil > 0) {
      view.blockedUntil = q.exhaustedUntil;
      view.blockedReason = `${q.exhaustedLimit ?? 'quota'} exhausted`;
    }
  }
  return view;
}

/** A request other than the probe may go only to a deployment the health replica shows closed (or does not know). */
export function dispatchAllowed(local: LocalView, c: Candidate): boolean {
  if (localOpenUntil(local, c.name) !== undefined) return false;
  const circuit = local.health.get(c.name)?.circuit;
  return circuit === undefined || circuit === 'closed' || circuit === 'unknown';
}

/** A half-open deployment (or an open one past its open_until) may only be sent the cluster-wide probe. */
export function needsProbe(local: LocalView, c: Candidate): boolean {
  const h = local.health.get(c.name);
  if (!h) return false;
  return h.circuit === 'half-open' || (h.circuit === 'open' && h.openUntil > 0 && h.openUntil <= local.clock.now());
}

/** Observed latency of one attempt: cluster-wide p50 from the health replica, else this replica's EWMA. */
export function expectedAttemptMs(local: Pick<RouterContext, 'health' | 'latency'>, c: Candidate, streaming: boolean): number {
  if (streaming) return local.latency.get(`stream:${c.name}`);
  return expectedLatency(local.health.get(c.name)?.p50LatencyMs, local.latency.get(c.name));
}
