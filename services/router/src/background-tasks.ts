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

export function createBackgroundTasks(logger: TaskLogger): BackgroundTasks {
  const inFlight = new Set<Promise<unknown>>();
  return {
    run(name, fields, task) {
      // Started from the event loop's check phase, not as a microtask: the
      // handler resolves its answer in the same turn as it hands over this
      // work, and gRPC writes that answer from a native immediate, which runs
      // before this one. As a microtask, every Settle/Commit/Store/publish
      // would be serialised and sent before the caller's answer.
      const p = new Promise<void>((resolve) => setImmediate(resolve))
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
