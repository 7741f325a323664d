import { type Redis, type ScriptFn, defineScript } from '@switchyard/redis';
import { WINDOW_MS, windowUsage } from '../domain/sliding-window';
import { DAY_WINDOW_MS, dayBucketMs } from '../domain/day-window';
import type {
  AcquireInput,
  AcquireResult,
  BlockReason,
  DimensionUsage,
  KeyKind,
  KeyState,
  QuotaStore,
} from '../domain/quota-store';
import {
  ACQUIRE_LUA,
  COOLDOWN_LUA,
  EXHAUSTED_LUA,
  LEAVE_LUA,
  RECOVER_LUA,
  TIGHTEN_LUA,
  SETTLE_LUA,
  STATE_LUA,
  UNAVAILABLE_LUA,
  windowLines,
} from './redis-quota-scripts';

/**
 * Every key of the limiter carries the one hash tag `{lim}`, so on Redis Cluster
 * they all live in one slot and any multi-key acquire is a legal single script.
 *
 * Why not one tag per deployment: a tenant limit is tenant-wide, across all
 * deployments. With deployment tags the tenant counter would have to be split
 * per (tenant, deployment), which silently multiplies a tenant's RPM by the
 * number of deployments it can reach. One slot costs horizontal sharding of the
 * limiter's Redis load, but one shard runs ~100k of these scripts per second,
 * far above the call rate of any LLM gateway (each call is seconds of upstream
 * work). Should that ever bind, the key builders below are the one place to
 * change (e.g. tenant-tagged tenant keys with a two-phase acquire).
 */
const TAG = '{lim}';

/** A reservation record names its keys `<kind>:<id>` (ACQUIRE_LUA's per-key name argument). */
function parseKeyName(name: string): { kind: KeyKind; id: string } {
  const sep = name.indexOf(':');
  return { kind: name.slice(0, sep) as KeyKind, id: name.slice(sep + 1) };
}

/** Most keys one Acquire may name (the domain's MAX_KEYS); sizes the per-arity scripts. */
const MAX_SCRIPT_KEYS = 8;

/**
 * The Lua scripts on one client, through the shared `defineScript` (EVALSHA,
 * EVAL on NOSCRIPT, one span per call, same-slot check). `defineScript` fixes
 * the key count, so the multi-key scripts are defined once per arity (same Lua).
 */
function scriptsFor(redis: Redis, windows: { windowMs: number; dayWindowMs: number; dayBucketMs: number }) {
  // A time-scaled window (tests only) is a different script: different Lua, different name.
  const standard = windowLines(WINDOW_MS, DAY_WINDOW_MS, dayBucketMs(DAY_WINDOW_MS));
  const mine = windowLines(windows.windowMs, windows.dayWindowMs, windows.dayBucketMs);
  const scaled = mine !== standard;
  const w = (lua: string) => (scaled ? lua.replace(standard, mine) : lua);
  const nm = (name: string) => (scaled ? `${name}_w${windows.windowMs}_d${windows.dayWindowMs}_b${windows.dayBucketMs}` : name);
  const perArity = (name: string, lua: string, keysFor: (n: number) => number) => {
    const fns = new Map<number, ScriptFn>();
    return (n: number): ScriptFn => {
      if (!Number.isInteger(n) || n < 1 || n > MAX_SCRIPT_KEYS) throw new RangeError(`${name}: 1..${MAX_SCRIPT_KEYS} limit keys, got ${n}`);
      let fn = fns.get(n);
      if (!fn) fns.set(n, (fn = defineScript(redis, { name: nm(`${name}_${n}`), lua: w(lua), numberOfKeys: keysFor(n) })));
      return fn;
    };
  };
  return {
    acquire: perArity('sy_lim_acquire', ACQUIRE_LUA, (n) => 11 * n + 5),
    leave: defineScript(redis, { name: nm('sy_lim_leave'), lua: w(LEAVE_LUA), numberOfKeys: 2 }),
    settle: perArity('sy_lim_settle', SETTLE_LUA, (n) => 2 + 9 * n),
    cooldown: defineScript(redis, { name: nm('sy_lim_cooldown'), lua: w(COOLDOWN_LUA), numberOfKeys: 3 }),
    exhausted: defineScript(redis, { name: nm('sy_lim_exhausted'), lua: w(EXHAUSTED_LUA), numberOfKeys: 2 }),
    recover: defineScript(redis, { name: nm('sy_lim_recover'), lua: w(RECOVER_LUA), numberOfKeys: 4 }),
    tighten: defineScript(redis, { name: nm('sy_lim_tighten'), lua: w(TIGHTEN_LUA), numberOfKeys: 4 }),
    unavailable: defineScript(redis, { name: nm('sy_lim_unavailable'), lua: w(UNAVAILABLE_LUA), numberOfKeys: 2 }),
    state: defineScript(redis, { name: nm('sy_lim_state'), lua: w(STATE_LUA), numberOfKeys: 12 }),
  };
}

export interface RedisQuotaStoreOptions {
  redis: Redis;
  /** Key prefix; tests use a fresh one per case to share one Redis. Default `sy:lim:`. */
  prefix?: string;
  /** Close the client on close(). Default false (the caller owns it). */
  ownsClient?: boolean;
  /** Sliding window length; only time-scaled tests change it. Default 60 000 ms. */
  windowMs?: number;
  /** TPD window length; only time-scaled tests change it. Default a day. */
  dayWindowMs?: number;
  /** TPD bucket length. Default 1/1440 of the day window (a minute of a real day). */
  dayBucketMs?: number;
}

/** The QuotaStore shared by every limiter replica: one Lua script per operation, Redis TIME as the clock. */
export function createRedisQuotaStore(options: RedisQuotaStoreOptions): QuotaStore {
  const { redis, prefix = 'sy:lim:', ownsClient = false, windowMs = WINDOW_MS, dayWindowMs = DAY_WINDOW_MS } = options;
  const bucketMs = options.dayBucketMs ?? dayBucketMs(dayWindowMs);
  const root = `${prefix}${TAG}:`;
  const base = (kind: KeyKind, id: string) => `${root}${kind === 'deployment' ? 'd' : 't'}:${id}`;
  const keyOf = (key: { kind: KeyKind; id: string }) => ({
    rpm: `${base(key.kind, key.id)}:rpm`,
    tpm: `${base(key.kind, key.id)}:tpm`,
    rpmSum: `${base(key.kind, key.id)}:rpm:sum`,
    tpmSum: `${base(key.kind, key.id)}:tpm:sum`,
    tpd: `${base(key.kind, key.id)}:tpd`,
    tpdBuckets: `${base(key.kind, key.id)}:tpd:b`,
    tpdSum: `${base(key.kind, key.id)}:tpd:sum`,
    conc: `${base(key.kind, key.id)}:conc`,
    cool: `${base(key.kind, key.id)}:cool`,
    unavail: `${base(key.kind, key.id)}:unavail`,
    epoch: `${base(key.kind, key.id)}:epoch`,
    admitted: `${base(key.kind, key.id)}:admitted`,
    queue: `${base(key.kind, key.id)}:q`,
    tickets: `${base(key.kind, key.id)}:qt`,
    queueMeta: `${base(key.kind, key.id)}:qm`,
    status: `${base(key.kind, key.id)}:status`,
  });
  const reservationKey = (id: string) => `${root}res:${id}`;
  const requestKey = (id: string) => `${root}req:${id}`;

  const scripts = scriptsFor(redis, { windowMs, dayWindowMs, dayBucketMs: bucketMs });
  const run = async (fn: ScriptFn, keys: string[], args: Array<string | number>) => (await fn(keys, args)) as unknown[];

  return {
    async acquire(input: AcquireInput): Promise<AcquireResult> {
      const keys: string[] = [];
      const args: Array<string | number> = [
        input.keys.length,
        input.requests,
        input.tokens,
        input.ttlMs,
        input.reservationId,
        input.requestId ? 1 : 0,
      ];
      for (const key of input.keys) {
        const k = keyOf(key);
        keys.push(k.rpm, k.tpm, k.conc, k.cool, k.unavail, k.admitted);
        args.push(key.limits.rpm ?? 0, key.limits.tpm ?? 0, key.limits.concurrency ?? 0, `${key.kind}:${key.id}`);
      }
      keys.push(reservationKey(input.reservationId), requestKey(input.requestId ?? input.reservationId));
      const q = input.queue;
      const qk = keyOf(input.keys[q?.index ?? 0]!);
      keys.push(qk.queue, qk.tickets, qk.queueMeta);
      for (const key of input.keys) {
        const k = keyOf(key);
        keys.push(k.rpmSum, k.tpmSum);
      }
      for (const key of input.keys) {
        const k = keyOf(key);
        keys.push(k.tpd, k.tpdBuckets, k.tpdSum);
      }
      args.push(q ? q.index + 1 : 0, q?.flow ?? '', q?.ticket ?? '', q?.enqueue ? 1 : 0, q?.maxWaitMs ?? 0, q?.leaseMs ?? 0);
      for (const key of input.keys) args.push(key.limits.tpd ?? 0);
      args.push(input.leaseMs ?? 0);
      const r = await run(scripts.acquire(input.keys.length), keys, args);
      if (Number(r[0]) === 1) {
        return { granted: true, reservationId: String(r[1]), nowMs: Number(r[2]), replayed: Number(r[3]) === 1 };
      }
      const slotsShort = Number(r[6] ?? 0);
      return {
        granted: false,
        blockedIndex: Number(r[1]),
        blockedBy: String(r[2]) as BlockReason,
        retryAfterMs: Number(r[3]),
        nowMs: Number(r[4]),
        ...(Number(r[0]) === 2 ? { ticket: String(r[5]) } : {}),
        ...(slotsShort > 0 ? { slotsShort } : {}),
      };
    },

    async markExhausted(key, untilMs) {
      const k = keyOf(key);
      const r = (await run(scripts.exhausted, [k.status, k.epoch], [Math.ceil(untilMs)])).map(Number);
      return { changed: r[0] === 1, epoch: r[1]!, nowMs: r[2]!, untilMs: r[3]! };
    },

    async recover(key) {
      const k = keyOf(key);
      const r = (await run(scripts.recover, [k.status, k.epoch, k.cool, k.unavail], [])).map(Number);
      return { recovered: r[0] === 1, epoch: r[1]!, nowMs: r[2]!, pendingUntilMs: r[3]! };
    },

    async tighten(key, remaining) {
      const k = keyOf(key);
      const r = (
        await run(scripts.tighten, [k.rpm, k.tpm, k.rpmSum, k.tpmSum], [
          key.limits.rpm ?? 0, remaining.rpm ?? -1, key.limits.tpm ?? 0, remaining.tpm ?? -1, remaining.rpmResetAt ?? 0, remaining.tpmResetAt ?? 0,
        ])
      ).map(Number);
      return { rpm: r[0] === 1, tpm: r[1] === 1, nowMs: r[2]! };
    },

    async leaveQueue(key, ticket) {
      const k = keyOf(key);
      await run(scripts.leave, [k.queue, k.tickets], [ticket]);
    },

    async settle(input) {
      const resKey = reservationKey(input.reservationId);
      // The record names the keys the settle script must declare; the script
      // re-reads it atomically, so a concurrent settle or expiry is harmless.
      const record = await redis.hgetall(resKey);
      const n = Number(record.n ?? 0);
      if (n === 0) return { found: false, tokensReturned: 0, tokensOverrun: 0, freedSlots: [] };
      const keys = [resKey, record.q === '1' && record.qk ? record.qk : resKey];
      const reserved = [];
      for (let i = 1; i <= n; i++) reserved.push(keyOf(parseKeyName(record[`k${i}`] ?? '')));
      for (const k of reserved) keys.push(k.rpm, k.tpm, k.conc);
      for (const k of reserved) keys.push(k.rpmSum, k.tpmSum);
      for (const k of reserved) keys.push(k.tpd, k.tpdBuckets, k.tpdSum);
      for (const k of reserved) keys.push(k.admitted);
      const r = await run(scripts.settle(n), keys, [
        input.reservationId,
        input.actualTokens,
        input.cancelled ? 1 : 0,
        input.leaseUsedRequests ?? 0,
        input.leaseLastUseMs ?? 0,
      ]);
      return { found: Number(r[0]) === 1, tokensReturned: Number(r[1]), tokensOverrun: Number(r[2]), freedSlots: r.slice(3).map((name) => parseKeyName(String(name))) };
    },

    async cooldown(key, ms) {
      const k = keyOf(key);
      const r = await run(scripts.cooldown, [k.cool, k.epoch, k.status], [Math.max(1, Math.ceil(ms))]);
      return { cooldownUntilMs: Number(r[0]), changed: Number(r[1]) === 1, epoch: Number(r[2]), nowMs: Number(r[3]) };
    },

    async setUnavailable(key, unavailable) {
      const k = keyOf(key);
      const r = await run(scripts.unavailable, [k.unavail, k.epoch], [unavailable ? 1 : 0]);
      return { changed: Number(r[0]) === 1, epoch: Number(r[1]), nowMs: Number(r[2]) };
    },

    async state(key): Promise<KeyState> {
      const k = keyOf(key);
      const r = (
        await run(scripts.state, [k.rpm, k.tpm, k.conc, k.cool, k.unavail, k.epoch, k.admitted, k.rpmSum, k.tpmSum, k.tpd, k.tpdBuckets, k.tpdSum], [])
      ).map(Number);
      const now = r[0]!;
      const usage: DimensionUsage[] = [];
      if (key.limits.rpm) usage.push({ dimension: 'rpm', ...windowUsage(r[1]!, r[3]!, key.limits.rpm, now, windowMs) });
      if (key.limits.tpm) usage.push({ dimension: 'tpm', ...windowUsage(r[4]!, r[6]!, key.limits.tpm, now, windowMs) });
      if (key.limits.tpd) {
        const limit = key.limits.tpd;
        const used = r[13]!;
        usage.push({ dimension: 'tpd', limit, used: Math.min(limit, used), remaining: Math.max(0, limit - used), resetsAtMs: used > 0 ? r[14]! : now });
      }
      if (key.limits.concurrency) {
        const limit = key.limits.concurrency;
        const used = r[7]!;
        usage.push({ dimension: 'concurrency', limit, used, remaining: Math.max(0, limit - used), resetsAtMs: used > 0 ? r[8]! : now });
      }
      const cool = r[9]!;
      return {
        usage,
        cooldownUntilMs: cool > now ? cool : 0,
        unavailable: r[10] === 1,
        epoch: r[11]!,
        admittedRequests: r[12]!,
        nowMs: now,
      };
    },

    async close() {
      if (ownsClient) await redis.quit();
    },
  };
}
