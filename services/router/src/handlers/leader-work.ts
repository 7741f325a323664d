/** What stops the work of a call that holds its idempotency key, and the moment that changes. */
export interface LeaderWork {
  signal: AbortSignal;
  /** A request of this call is about to go upstream: from now on only the deadline stops it. */
  dispatched(): void;
}

/**
 * The leader of an idempotency key finishes once its request is upstream
 * (README "idempotency_key"): the provider call may already cost, and the
 * retry that follows must get its answer, not make a second one. Before that
 * nothing was sent and nothing is kept, so its caller's cancel stops it like
 * any call's — otherwise a cancelled job still waiting for quota would be sent
 * once its turn came, after the job was already CANCELLED.
 */
export function leaderWork(caller: AbortSignal, deadline: Date | undefined): LeaderWork {
  const beforeDispatch = new AbortController();
  const onCancel = () => beforeDispatch.abort(caller.reason);
  if (caller.aborted) onCancel();
  else caller.addEventListener('abort', onCancel, { once: true });
  return {
    signal: AbortSignal.any([untilDeadline(deadline), beforeDispatch.signal]),
    dispatched: () => caller.removeEventListener('abort', onCancel),
  };
}

/** Aborts at the caller's deadline only (never, without one). */
function untilDeadline(deadline: Date | undefined): AbortSignal {
  if (!deadline) return new AbortController().signal;
  return AbortSignal.timeout(Math.max(0, deadline.getTime() - Date.now()));
}
