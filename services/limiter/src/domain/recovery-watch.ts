import type { Clock } from '@switchyard/util';
import type { LimitResolver, ResolvedKey } from './limits';
import type { Announce } from './quota-changes';
import type { BlockReason, QuotaStore } from './quota-store';

/** Recovery checks run this long after the until they wait for (timer vs Redis clock). */
const RECOVERY_SLACK_MS = 5;

export interface RecoveryWatchDeps {
  resolver: LimitResolver;
  store: QuotaStore;
  clock: Clock;
  announce: Announce;
  /** Timer for recovery checks; returns a cancel function. */
  schedule: (ms: number, fn: () => void) => () => void;
  /** Runs a step whose failure is reported, not thrown (the next one retries). */
  background: (what: string, fn: () => Promise<unknown>) => void;
}

/**
 * A deployment's exhausted / cooling-down → recovered life: marks an
 * exhaustion an Acquire ran into (once per until), and checks for recovery
 * when it should be over, so RECOVERED is published exactly once.
 */
export function createRecoveryWatch(deps: RecoveryWatchDeps) {
  const { resolver, store, clock, announce, schedule, background } = deps;
  /** Per deployment: the until of the exhaustion this replica already reported (saves a script per denial). */
  const markedUntil = new Map<string, number>();
  /** deployment → pending recovery check. */
  const recoveries = new Map<string, { untilMs: number; cancel: () => void }>();
  let closed = false;

  function noteExhaustion(key: ResolvedKey, by: BlockReason, untilMs: number) {
    if (key.kind !== 'deployment' || (by !== 'rpm' && by !== 'tpm' && by !== 'tpd')) return;
    if ((markedUntil.get(key.id) ?? 0) >= untilMs - 50) return;
    markedUntil.set(key.id, untilMs);
    background('mark exhausted', async () => {
      const r = await store.markExhausted(key, untilMs);
      if (r.changed) await announce(key, 'exhausted', r, r.untilMs, `${by} limit ${key.limits[by]} reached; capacity again at ${new Date(r.untilMs).toISOString()}`, by);
      watch(key.id, r.untilMs);
    });
  }

  /**
   * Checks a deployment for recovery at `untilMs` (store time; the local timer
   * may be a little early or late, and the script decides). Every replica that
   * saw the exhaustion or cooldown (itself, or via the quota event) watches;
   * exactly one wins the RECOVER script and publishes RECOVERED.
   */
  function watch(deployment: string, untilMs: number) {
    if (closed || untilMs <= 0) return;
    const key = resolver.resolve('deployment', deployment);
    if (!key) return;
    const pending = recoveries.get(deployment);
    if (pending && pending.untilMs >= untilMs) return;
    pending?.cancel();
    const cancel = schedule(Math.max(0, untilMs - clock.now()) + RECOVERY_SLACK_MS, () => {
      recoveries.delete(deployment);
      background('recover', async () => {
        const r = await store.recover(key);
        if (r.recovered) {
          markedUntil.delete(deployment);
          await announce(key, 'recovered', r, 0, 'capacity available again');
        } else if (r.pendingUntilMs > 0) watch(deployment, r.pendingUntilMs);
      });
    });
    recoveries.set(deployment, { untilMs, cancel });
  }

  /** Stops pending recovery timers (shutdown). */
  function close() {
    closed = true;
    for (const r of recoveries.values()) r.cancel();
    recoveries.clear();
  }

  return { noteExhaustion, watch, close };
}

export type RecoveryWatch = ReturnType<typeof createRecoveryWatch>;
