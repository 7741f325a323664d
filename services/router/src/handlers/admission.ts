import type { BreakerPeer } from '../adapters/breaker-peer';
import type { LimiterPeer } from '../adapters/limiter-peer';
import type { Candidate } from '../domain/candidates';
import type { Admission } from '../domain/run-attempts';
import { reservedTokens } from '../domain/token-accounting';
import { needsProbe, type LocalView } from './deployment-view';
import { requestFor, type PreparedCall } from './prepare-call';

/** Admission of attempts: the half-open probe permit when a deployment needs one, then the limiter; and handing both back. */
export interface AttemptAdmission {
  /** One attempt on `c`. Never throws. With `maxWaitMs` the limiter may queue the call that long. */
  admit(p: PreparedCall, c: Candidate, maxWaitMs?: number, signal?: AbortSignal): Promise<Admission>;
  /** The attempt is over: free the probe, settle the limiter to `usage` tokens or hand it back unused. */
  settle(p: PreparedCall, admission: Admission | undefined, usage: { tokens: number } | 'cancelled'): void;
}

export function createAttemptAdmission(deps: { limiter: LimiterPeer; breaker: BreakerPeer; local: LocalView; probesInFlight: Set<string> }): AttemptAdmission {
  const { limiter, breaker, local, probesInFlight } = deps;

  const acquire = (p: PreparedCall, c: Candidate, maxWaitMs: number, signal?: AbortSignal, exact = false) =>
    limiter.acquire({
      deployment: c.name,
      tenant: p.owner.tenantId,
      tokens: reservedTokens(p.inputTokens.get(c.name) ?? 0, requestFor(p, c.name).maxTokens),
      maxWaitMs,
      ...(signal ? { signal } : {}),
      requestId: p.requestId,
      deadlineAt: p.deadlineAt,
      ...(exact ? { exact } : {}),
    });

  /** What fitting the call changed for this candidate is said in the note of every attempt it admits (the fan-out's first one included). */
  const withFitNote = (p: PreparedCall, c: Candidate, a: Admission): Admission => {
    const note = p.fitNotes.get(c.name);
    if (!note || !a.granted) return a;
    return { ...a, note: a.note ? `${note}; ${a.note}` : note };
  };

  const admit = async (p: PreparedCall, c: Candidate, maxWaitMs: number, signal?: AbortSignal): Promise<Admission> => {
    if (!needsProbe(local, c)) return acquire(p, c, maxWaitMs, signal);
    // The breaker lets the holder re-acquire its own permit, so this replica
    // also keeps its probes to one in flight per deployment.
    if (probesInFlight.has(c.name)) {
      return { granted: false, source: 'breaker', retryAfterMs: 0, reason: 'half-open, this replica already has the probe in flight' };
    }
    probesInFlight.add(c.name);
    const probe = await breaker.acquireProbe({ deployment: c.name, timeoutMs: c.deployment.timeoutMs, requestId: p.requestId, deadlineAt: p.deadlineAt });
    if (!probe.ok) {
      probesInFlight.delete(c.name);
      return probe.denial;
    }
    // The probe's attempt is admitted per call, never from a lease.
    const admission = await acquire(p, c, maxWaitMs, signal, true);
    if (!admission.granted) {
      probesInFlight.delete(c.name);
      return admission;
    }
    return { ...admission, probe: c.name, note: [probe.note, admission.note].filter(Boolean).join('; ') };
  };

  return {
    admit: async (p, c, maxWaitMs = 0, signal) => withFitNote(p, c, await admit(p, c, maxWaitMs, signal)),
    settle(p, admission, usage) {
      if (admission?.granted && admission.probe) probesInFlight.delete(admission.probe);
      if (!admission?.granted || !admission.reservationId) return;
      limiter.settle(admission.reservationId, usage, p.requestId);
    },
  };
}
