import { type Redis, type ScriptFn, defineScript } from '@switchyard/redis';
import type { Clock } from '@switchyard/util';
import {
  type BreakerPolicy,
  type CircuitRecord,
  type CircuitStateName,
  type DeploymentIdentity,
  type ForceInput,
  type OutcomeErrorClass,
  type OutcomeInput,
  type Transition,
  DEFAULT_POLICY,
  policyFor,
  slowCallMsFor,
} from '../domain/circuit';
import { type HealthStore, type ProbeResult, type StoreStep, EVENT_DEDUP_MS } from '../domain/health-store';
import { FORCE_SCRIPT, OBSERVE_SCRIPT, PROBE_SCRIPT, RAISE_EPOCH_SCRIPT, RECORD_BATCH_SCRIPT, RECORD_SCRIPT } from './redis-health-lua';

export const BREAKER_KEY_PREFIX = 'sy:brk:';

/** How long a replica trusts its own last registry and open-set write for a deployment on the outcome path (see track). */
export const TRACK_REFRESH_MS = 5_000;

/** Key builders: every per-deployment key carries the `{deployment}` hash tag so one script stays on one slot. */
export const breakerKeys = {
  circuit: (deployment: string) => `${BREAKER_KEY_PREFIX}{${deployment}}:circuit`,
  /** Sorted set of half-open probe holders scored by permit expiry. */
  probe: (deployment: string) => `${BREAKER_KEY_PREFIX}{${deployment}}:probes`,
  event: (deployment: string, eventId: string) => `${BREAKER_KEY_PREFIX}{${deployment}}:ev:${eventId}`,
  /** What `event` puts before the id: the batch script builds each marker from it (same slot). */
  eventPrefix: (deployment: string) => `${BREAKER_KEY_PREFIX}{${deployment}}:ev:`,
  /** Registry of deployments (its own slot; maintained outside the scripts, idempotently). */
  deployments: () => `${BREAKER_KEY_PREFIX}{index}:deployments`,
  /** Deployments last seen OPEN with a deadline (the sweep's work list; best effort). */
  open: () => `${BREAKER_KEY_PREFIX}{index}:open`,
};

interface RawStep {
  record?: Omit<CircuitRecord, 'lastErrorClass'> & { lastErrorClass: string };
  transition?: Transition;
  observed?: Transition;
  now: number;
  duplicate?: boolean;
}

interface RawBatch {
  record: NonNullable<RawStep['record']>;
  now: number;
  steps: { duplicate: boolean; transition?: Transition; observed?: Transition; record?: RawStep['record'] }[];
}

interface RawProbe extends RawStep {
  granted: boolean;
  holderId: string;
  expiresAt: number;
  state: CircuitStateName;
}

export interface RedisHealthStoreOptions {
  redis: Redis;
  policy?: BreakerPolicy;
  /**
   * Production leaves this unset: scripts take the time from Redis TIME so
   * replica clocks do not matter. Tests and simulations pass a clock to drive
   * the same scripts through time without sleeping.
   */
  clock?: Clock;
  /** Close the connection in close() (when the store created/owns it). */
  ownsConnection?: boolean;
}

type Script = 'record' | 'recordBatch' | 'observe' | 'force' | 'probe' | 'raiseEpoch';
const SOURCES: Record<Script, { lua: string; numberOfKeys: number }> = {
  record: { lua: RECORD_SCRIPT, numberOfKeys: 3 },
  recordBatch: { lua: RECORD_BATCH_SCRIPT, numberOfKeys: 3 },
  observe: { lua: OBSERVE_SCRIPT, numberOfKeys: 2 },
  force: { lua: FORCE_SCRIPT, numberOfKeys: 2 },
  probe: { lua: PROBE_SCRIPT, numberOfKeys: 2 },
  raiseEpoch: { lua: RAISE_EPOCH_SCRIPT, numberOfKeys: 2 },
};

/**
 * HealthStore on Redis, shared by every breaker replica. Each operation is one
 * Lua script (atomic per deployment), so concurrent replicas never both see
 * the same transition.
 */
export function createRedisHealthStore(options: RedisHealthStoreOptions): HealthStore {
  const { redis, clock } = options;
  const shared = options.policy ?? DEFAULT_POLICY;
  // defineScript handles EVALSHA → EVAL on NOSCRIPT (Redis restarted) and the span per call.
  const scripts = Object.fromEntries(
    (Object.keys(SOURCES) as Script[]).map((name) => [name, defineScript(redis, { name: `sy_brk_${name}`, ...SOURCES[name] })]),
  ) as Record<Script, ScriptFn>;

  async function run(script: Script, keys: string[], id: DeploymentIdentity, extra: string[]): Promise<string> {
    const policy = policyFor(shared, id.deployment);
    const args = [
      clock ? String(clock.now()) : '',
      String(policy.consecutiveFailures),
      String(policy.openMs),
      String(policy.windowMs),
      id.deployment,
      id.provider,
      id.model,
      String(policy.failureRateThreshold),
      String(policy.minimumCalls),
      String(slowCallMsFor(policy, id.deployment)),
      String(policy.slowCallRateThreshold),
      String(policy.maxOpenMs),
      String(policy.healthyResetMs),
      String(policy.halfOpenProbes),
      ...extra,
    ];
    return (await scripts[script](keys, args)) as string;
  }

  const toStep = (raw: RawStep): StoreStep => {
    const r = raw.record!;
    const record: CircuitRecord = {
      ...r,
      lastErrorClass: r.lastErrorClass === '' ? undefined : (r.lastErrorClass as OutcomeErrorClass),
    };
    return { record, transition: raw.transition, observed: raw.observed, now: raw.now };
  };

  /**
   * Keeps the registry and the sweep's work list up to date in one round trip.
   * They live outside the per-deployment slot, so this is not atomic with the
   * script: losing an update only delays OPEN→HALF_OPEN to the next read.
   *
   * On the outcome path (`reuse`) the round trip is skipped when this replica
   * wrote the same membership for the deployment less than TRACK_REFRESH_MS
   * ago and the step made no transition: it was one of the two Redis round
   * trips of every batch, nearly always a no-op. Every transition is still
   * written by the replica that made it, so another replica's stale memo can
   * only leave a closed deployment in the open set (the sweep re-reads it)
   * or the registry without a deployment after Redis lost it, each for at
   * most TRACK_REFRESH_MS.
   */
  const tracked = new Map<string, { open: boolean; at: number }>();
  async function track(step: StoreStep, registered: boolean, reuse = false): Promise<StoreStep> {
    const { record } = step;
    const open = record.state === 'OPEN' && record.openUntil > 0;
    const last = tracked.get(record.deployment);
    if (reuse && !step.transition && !step.observed && last?.open === open && step.now - last.at < TRACK_REFRESH_MS && step.now >= last.at) return step;
    const pipeline = redis.pipeline();
    if (registered) pipeline.sadd(breakerKeys.deployments(), record.deployment);
    if (open) pipeline.sadd(breakerKeys.open(), record.deployment);
    else pipeline.srem(breakerKeys.open(), record.deployment);
    await pipeline.exec();
    // Only a write that registered the deployment may be reused by a later registering one.
    if (registered) tracked.set(record.deployment, { open, at: step.now });
    else tracked.delete(record.deployment);
    return step;
  }

  const identityOnly = (deployment: string): DeploymentIdentity => ({ deployment, provider: '', model: '' });

  return {
    async record(id, outcome: OutcomeInput & { eventId?: string }) {
      const eventKey = breakerKeys.event(id.deployment, outcome.eventId ?? '');
      const raw = JSON.parse(
        await run('record', [breakerKeys.circuit(id.deployment), breakerKeys.probe(id.deployment), eventKey], id, [
          outcome.errorClass ?? '',
          String(Math.max(0, Math.round(outcome.latencyMs))),
          String(EVENT_DEDUP_MS),
          outcome.eventId ? '1' : '0',
        ]),
      ) as RawStep;
      const step = await track(toStep(raw), true, true);
      return { ...step, duplicate: raw.duplicate === true };
    },

    async recordBatch(id, outcomes) {
      const args = [String(EVENT_DEDUP_MS)];
      for (const o of outcomes) args.push(o.errorClass ?? '', String(Math.max(0, Math.round(o.latencyMs))), o.eventId ?? '');
      const raw = JSON.parse(
        await run('recordBatch', [breakerKeys.circuit(id.deployment), breakerKeys.probe(id.deployment), breakerKeys.eventPrefix(id.deployment)], id, args),
      ) as RawBatch;
      const transitioned = raw.steps.find((s) => s.transition || s.observed);
      const last = await track(toStep({ record: raw.record, now: raw.now, transition: transitioned?.transition ?? transitioned?.observed }), true, true);
      return raw.steps.map((s) => ({
        ...(s.record ? toStep({ record: s.record, transition: s.transition, observed: s.observed, now: raw.now }) : { record: last.record, now: raw.now }),
        duplicate: s.duplicate,
      }));
    },

    async observe(deployment) {
      const raw = JSON.parse(
        await run('observe', [breakerKeys.circuit(deployment), breakerKeys.probe(deployment)], identityOnly(deployment), []),
      ) as RawStep;
      if (!raw.record) {
        await redis.srem(breakerKeys.open(), deployment);
        return undefined;
      }
      return track(toStep(raw), false);
    },

    async force(id, input: ForceInput) {
      const raw = JSON.parse(
        await run('force', [breakerKeys.circuit(id.deployment), breakerKeys.probe(id.deployment)], id, [
          input.state ?? '',
          input.release ? '1' : '0',
          input.reason,
        ]),
      ) as RawStep;
      return track(toStep(raw), true);
    },

    async acquireProbe(deployment, holderId, ttlMs, extend = false): Promise<ProbeResult> {
      const raw = JSON.parse(
        await run('probe', [breakerKeys.circuit(deployment), breakerKeys.probe(deployment)], identityOnly(deployment), [
          holderId,
          String(ttlMs),
          extend ? '1' : '0',
        ]),
      ) as RawProbe;
      const step = raw.transition ? await track(toStep(raw), false) : undefined;
      return { granted: raw.granted, holderId: raw.holderId, expiresAt: raw.expiresAt, state: raw.state, step };
    },

    async raiseEpoch(deployment, held) {
      const raw = JSON.parse(
        await run('raiseEpoch', [breakerKeys.circuit(deployment), breakerKeys.probe(deployment)], identityOnly(deployment), [String(held)]),
      ) as RawStep;
      return raw.record ? toStep(raw) : undefined;
    },

    async deployments() {
      return (await redis.smembers(breakerKeys.deployments())).sort();
    },

    async openDeployments() {
      return (await redis.smembers(breakerKeys.open())).sort();
    },

    async close() {
      if (options.ownsConnection) await redis.quit().catch(() => undefined);
    },
  };
}
