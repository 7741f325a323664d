/** Minimal logger shape (pino-compatible). */
export interface LifecycleLogger {
  warn(obj: object, msg?: string): void;
}

/**
 * What a service's start() has brought up, to be taken down in reverse: the
 * one shutdown path for a running service and for a start-up that failed half
 * way (CONVENTIONS "Shutdown on SIGTERM").
 */
export interface Lifecycle {
  /** Registers a cleanup (`what` names it in the log if it fails); cleanups run last registered first. */
  onStop(what: string, cleanup: () => unknown): void;
  /**
   * Runs every cleanup once, in reverse order; a failing one is logged and the
   * rest still run. Idempotent: every call returns the same promise.
   */
  stop(): Promise<void>;
  /** Runs start-up; if it throws, stops what it had already started and rethrows. */
  starting<T>(build: () => Promise<T>): Promise<T>;
}

export function createLifecycle(logger?: LifecycleLogger): Lifecycle {
  const cleanups: Array<{ what: string; cleanup: () => unknown }> = [];
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const { what, cleanup } of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (err) {
          logger?.warn({ err, step: what }, 'cleanup step failed');
        }
      }
    })());

  return {
    onStop(what, cleanup) {
      // Something started after stop() began would never be cleaned up.
      if (stopped) throw new Error(`lifecycle: "${what}" registered after stop`);
      cleanups.push({ what, cleanup });
    },
    stop,
    async starting(build) {
      try {
        return await build();
      } catch (err) {
        await stop();
        throw err;
      }
    },
  };
}
