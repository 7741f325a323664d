import { CircuitState } from '@switchyard/contracts';
import type { Admission } from '../domain/run-attempts';
import { hopDeadline, peerErrorText, type PeerDeps } from './peer-call';
import type { BreakerClient } from './peers';

export type ProbePermit = { ok: true; note: string } | { ok: false; denial: Extract<Admission, { granted: false }> };

/** The breaker service as the router's call uses it: the cluster-wide half-open probe permit. */
export interface BreakerPeer {
  /**
   * DESIGN step 4: a HALF_OPEN deployment gets a request only from the
   * replica holding the breaker's probe permit, so the whole cluster sends it
   * one probe. Lost → a denial that skips it. Breaker unreachable → permitted
   * (its outcome still reaches the breaker), noted on the attempt.
   */
  acquireProbe(r: { deployment: string; timeoutMs: number; requestId: string; deadlineAt: number }): Promise<ProbePermit>;
}

/** The probe permit outlives the attempt by this much, so a slow probe is not raced by another replica's. */
const PROBE_TTL_SLACK_MS = 1000;

/** `replicaId` names this replica as the probe holder. */
export function createBreakerPeer({ client, clock, logger, peerDeadlineMs, replicaId }: PeerDeps<BreakerClient> & { replicaId: string }): BreakerPeer {
  return {
    async acquireProbe(r) {
      try {
        const res = await client.acquireProbe(
          { deployment: r.deployment, holderId: replicaId, ttlMs: Math.min(r.timeoutMs + PROBE_TTL_SLACK_MS, 0xffffffff) },
          hopDeadline({ now: clock.now(), deadlineAt: r.deadlineAt, peerDeadlineMs }),
        );
        if (res.granted) return { ok: true, note: 'half-open probe' };
        // This replica's view (from the published health) is behind the breaker's
        // store, which holds the circuit CLOSED: no probe is needed, and waiting
        // for one would never end (the breaker republishes its state meanwhile).
        if (res.state === CircuitState.CLOSED && !res.holderId) return { ok: true, note: 'breaker holds the circuit CLOSED: no probe needed' };
        const expires = Number(res.expiresAtUnixMs);
        return {
          ok: false,
          denial: {
            granted: false,
            source: 'breaker',
            retryAfterMs: expires > 0 ? Math.max(0, expires - clock.now()) : 0,
            reason: res.holderId ? `half-open, probe held by ${res.holderId}` : `half-open, probe not granted (state ${CircuitState[res.state] ?? res.state})`,
          },
        };
      } catch (err) {
        logger.warn({ request_id: r.requestId, peer: 'breaker', deployment: r.deployment, err: { message: peerErrorText(err) } }, 'breaker unreachable for AcquireProbe; probing anyway');
        return { ok: true, note: 'breaker unavailable: unpermitted probe' };
      }
    },
  };
}
