/** pino-compatible subset. */
export interface TaskLogger {
  warn(obj: object, msg?: string): void;
}

/**
 * Work that must happen but must not delay the caller (limiter Settle, budget
 * Commit, cache Store, outcome publish). Failures are logged, never silent;
 * `drain()` lets shutdown wait for what is still in flight so a SIGTERM does
 * not lose accounting.
 */
export interface BackgroundTasks {
  run(name: string, fields: object, task: () => Promise<unknown>): void;
  /** Resolves when every task started so far has settled. */
  drain(): Promise<void>;
  pending(): number;
}

/**
 * Resolves two check phases from now. A handler hands over its accounting in
 * the same turn as it resolves its answer, and a unary gRPC answer leaves in
 * two steps: the message from the next check phase, the trailers (grpc-status,
 * which is what completes the call for the caller) one turn later, when http2
 * asks grpc-js for them. Started as a microtask, every Settle/Commit/Store/
 * publish was built and sent before the answer; started from one check phase,
 * still before its trailers (a 50 ms task then delayed a unary answer by 50 ms,
 * from two it did not).
 */
function afterTheAnswer(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

export function createBackgroundTasks(logger: TaskLogger): BackgroundTasks {
  const inFlight = new Set<Promise<unknown>>();
  return {
    run(name, fields, task) {
      const p = afterTheAnswer()
        .then(task)
        .catch((err: unknown) => logger.warn({ ...fields, task: name, err: { message: (err as Error)?.message ?? String(err) } }, `${name} failed`))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    },
    async drain() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    pending: () => inFlight.size,
  };
}
