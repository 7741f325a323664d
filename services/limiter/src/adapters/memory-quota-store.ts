import { type Clock, systemClock } from '@switchyard/util';
import { type SlidingLog, WINDOW_MS, emptyLog, logAdd, logRemove, logSum, logWait, windowUsage } from '../domain/sliding-window';
import {
  DAY_WINDOW_MS,
  type DayWindow,
  type DayWindowShape,
  bucketExpiry,
  bucketOf,
  dayAdd,
  dayBucketMs,
  dayFix,
  daySum,
  dayWait,
  emptyDayWindow,
  newestBucket,
} from '../domain/day-window';
import type {
  AcquireInput,
  AcquireResult,
  BlockReason,
  CooldownResult,
  DimensionUsage,
  KeyKind,
  KeyState,
  LimitedKey,
  QuotaStore,
  SettleInput,
  SettleResult,
  UnavailableResult,
} from '../domain/quota-store';

interface ReservedKey {
  name: string;
  ref: { kind: KeyKind; id: string };
  rpm: number;
  tpm: number;
  tpd: number;
  concurrency: boolean;
}

interface Reservation {
  keys: ReservedKey[];
  requests: number;
  tokens: number;
  expiresAt: number;
  /** The day bucket its tokens were charged to (settle corrects that bucket). */
  dayBucket: number;
  requestId?: string;
  /** A lease (leaseMs > 0): when it was granted; its entries were stamped at grantedAt + leaseMs. */
  leaseMs: number;
  grantedAt: number;
}

interface Ticket {
  start: number;
  deadline: number;
  lease: number;
  requests: number;
  tokens: number;
}

interface WaitQueue {
  vt: number;
  seq: number;
  /** flow → last finish tag. */
  flows: Map<string, number>;
  tickets: Map<string, Ticket>;
}

const keyName = (key: { kind: KeyKind; id: string }) => `${key.kind}:${key.id}`;

/**
 * In-process QuotaStore for the embedded demo and fast tests: the same
 * sliding-log rules (domain/sliding-window.ts) and the same semantics as the Redis store, one replica
 * only. Every method is synchronous inside, so each is atomic like a Lua script.
 */
export interface MemoryQuotaStoreOptions {
  clock?: Clock;
  /** RPM/TPM window; only time-scaled tests change it. Default 60 000 ms. */
  windowMs?: number;
  /** TPD window; only time-scaled tests change it. Default a day. */
  dayWindowMs?: number;
  /** TPD bucket length. Default 1/1440 of the day window (a minute of a real day). */
  dayBucketMs?: number;
}

export function createMemoryQuotaStore(options: MemoryQuotaStoreOptions = {}): QuotaStore {
  const clock = options.clock ?? systemClock;
  const W = options.windowMs ?? WINDOW_MS;
  const dayWindowMs = options.dayWindowMs ?? DAY_WINDOW_MS;
  const day: DayWindowShape = { windowMs: dayWindowMs, bucketMs: options.dayBucketMs ?? dayBucketMs(dayWindowMs) };
  /** `<key>` → its TPD buckets. */
  const days = new Map<string, DayWindow>();
  const dayOf = (name: string): DayWindow => {
    let w = days.get(name);
    if (!w) days.set(name, (w = emptyDayWindow()));
    return w;
  };
  /** `<key>:rpm` / `<key>:tpm` → sliding log. */
  const logs = new Map<string, SlidingLog>();
  const logOf = (name: string): SlidingLog => {
    let log = logs.get(name);
    if (!log) logs.set(name, (log = emptyLog()));
    return log;
  };
  /** key name → reservation id → expiry. */
  const inFlight = new Map<string, Map<string, number>>();
  const cooldowns = new Map<string, number>();
  /** key name → open exhausted / cooldown status awaiting its RECOVERED. */
  const statuses = new Map<string, { state: 'exhausted' | 'cooldown'; until: number }>();
  const unavailable = new Set<string>();
  const epochs = new Map<string, number>();
  /** key name → requests admitted (cumulative; never swept). */
  const admitted = new Map<string, number>();
  const reservations = new Map<string, Reservation>();
  const requestIds = new Map<string, { reservationId: string; expiresAt: number }>();
  const queues = new Map<string, WaitQueue>();
  const queueOf = (name: string): WaitQueue => {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = { vt: 0, seq: 0, flows: new Map(), tickets: new Map() }));
    return q;
  };

  const liveReservation = (id: string, now: number): Reservation | undefined => {
    const r = reservations.get(id);
    if (r && r.expiresAt <= now) {
      reservations.delete(id);
      return undefined;
    }
    return r;
  };

  const liveInFlight = (name: string, now: number): Map<string, number> => {
    let members = inFlight.get(name);
    if (!members) inFlight.set(name, (members = new Map()));
    for (const [id, expiresAt] of members) if (expiresAt <= now) members.delete(id);
    return members;
  };


  /** Unsettled reservations expire lazily; sweep now and then so a long demo run does not grow without bound. */
  let operations = 0;
  const sweep = (now: number) => {
    if (++operations % 1_000 !== 0) return;
    for (const [id, r] of reservations) if (r.expiresAt <= now) reservations.delete(id);
    for (const [id, q] of requestIds) if (q.expiresAt <= now) requestIds.delete(id);
    for (const [name, until] of cooldowns) if (until <= now) cooldowns.delete(name);
    for (const [name, log] of logs) if (logSum(log, now, W) === 0) logs.delete(name);
    for (const [name, w] of days) if (daySum(w, now, day) === 0 && w.buckets.size === 0) days.delete(name);
    for (const [name, q] of queues) {
      for (const [id, t] of q.tickets) if (t.deadline <= now || t.lease <= now) q.tickets.delete(id);
      if (q.tickets.size === 0) queues.delete(name);
    }
  };

  const bumpEpoch = (name: string) => {
    const next = (epochs.get(name) ?? 0) + 1;
    epochs.set(name, next);
    return next;
  };

  /** SETTLE_LUA's lease branch: entries shrink to what was used, re-stamped at the last use (never later than they were). */
  const settleLease = (r: Reservation, input: SettleInput, actual: number, now: number) => {
    const used = input.cancelled ? 0 : Math.min(r.requests, input.leaseUsedRequests ?? 0);
    const stamp = r.grantedAt + Math.min(input.leaseLastUseMs ?? 0, r.leaseMs);
    const restamp = (name: string, units: number, overrunFrom?: number) => {
      const log = logOf(name);
      logSum(log, now, W);
      const entry = logRemove(log, input.reservationId);
      if (entry) logAdd(log, input.reservationId, Math.min(entry.ts, stamp), units);
      else if (overrunFrom !== undefined && units > overrunFrom) logAdd(log, `${input.reservationId}-over`, now, units - overrunFrom);
    };
    for (const key of r.keys) {
      if (key.tpm) restamp(`${key.name}:tpm`, actual, r.tokens);
      if (key.rpm) restamp(`${key.name}:rpm`, used);
      admitted.set(key.name, (admitted.get(key.name) ?? 0) - (r.requests - used));
    }
  };

  return {
    async acquire(input: AcquireInput): Promise<AcquireResult> {
      const now = clock.now();
      sweep(now);
      const leaseMs = input.leaseMs ?? 0;
      if (input.requestId) {
        const seen = requestIds.get(input.requestId);
        if (seen && seen.expiresAt > now && liveReservation(seen.reservationId, now)) {
          return { granted: true, reservationId: seen.reservationId, nowMs: now, replayed: true };
        }
      }
      // The wait queue (same rules as ACQUIRE_LUA): purge dead tickets, find our start tag and what is ahead.
      const qin = input.queue;
      const queue = qin ? queueOf(keyName(input.keys[qin.index]!)) : undefined;
      let ticket = qin?.ticket ?? '';
      let mine: Ticket | undefined;
      let myStart = 0;
      const ahead = { n: 0, requests: 0, tokens: 0 };
      if (qin && queue) {
        const own = ticket ? queue.tickets.get(ticket) : undefined;
        if (own && own.deadline > now) mine = own;
        else if (own) queue.tickets.delete(ticket);
        if (!mine) {
          ticket = '';
          myStart = Math.max(queue.vt, queue.flows.get(qin.flow) ?? 0);
        } else myStart = mine.start;
        for (const [id, t] of queue.tickets) {
          if (id === ticket) continue;
          if (t.deadline <= now || t.lease <= now) {
            queue.tickets.delete(id);
          } else if (t.start < myStart || (t.start === myStart && (!mine || id < ticket))) {
            ahead.n += 1;
            ahead.requests += t.requests;
            ahead.tokens += t.tokens;
          }
        }
      }
      let blocked: { index: number; by: BlockReason; wait: number; slotsShort?: number } | undefined;
      let other = false;
      const block = (index: number, by: BlockReason, wait: number, slotsShort?: number) => {
        if (index !== qin?.index || by === 'unavailable') other = true;
        if (!blocked || wait > blocked.wait) blocked = { index, by, wait, ...(slotsShort !== undefined ? { slotsShort } : {}) };
      };
      const writes: Array<[string, number]> = [];
      const dayWrites: string[] = [];
      input.keys.forEach((key, index) => {
        const name = keyName(key);
        const extra = index === qin?.index ? ahead : { n: 0, requests: 0, tokens: 0 };
        if (unavailable.has(name)) block(index, 'unavailable', Number.POSITIVE_INFINITY);
        const until = cooldowns.get(name) ?? 0;
        if (until > now) block(index, 'cooldown', until - now);
        const dims: Array<['rpm' | 'tpm', number | undefined, number, number]> = [
          ['rpm', key.limits.rpm, input.requests, extra.requests],
          ['tpm', key.limits.tpm, input.tokens, extra.tokens],
        ];
        for (const [dim, limit, cost, extraCost] of dims) {
          if (!limit) continue;
          const log = logOf(`${name}:${dim}`);
          // A lease must leave at least its own cost free (ACQUIRE_LUA's margin).
          const wait = logWait(log, cost + extraCost + (leaseMs > 0 ? cost : 0), limit, now, W);
          if (wait === 0) writes.push([`${name}:${dim}`, cost]);
          else block(index, dim, wait);
        }
        if (key.limits.tpd) {
          const wait = dayWait(dayOf(name), input.tokens + extra.tokens, key.limits.tpd, now, day);
          if (wait === 0) dayWrites.push(name);
          else block(index, 'tpd', wait);
        }
        if (key.limits.concurrency) {
          const members = liveInFlight(name, now);
          if (members.size + extra.n >= key.limits.concurrency) {
            const expiries = [...members.values()].sort((a, b) => a - b);
            const idx = members.size + extra.n - key.limits.concurrency;
            block(index, 'concurrency', idx < expiries.length ? expiries[idx]! - now : 1_000, idx + 1);
          }
        }
      });
      if (blocked) {
        const wait = Number.isFinite(blocked.wait) ? blocked.wait : 0;
        const denial = {
          granted: false as const, blockedIndex: blocked.index, blockedBy: blocked.by, retryAfterMs: wait, nowMs: now,
          ...(blocked.slotsShort !== undefined ? { slotsShort: blocked.slotsShort } : {}),
        };
        if (!qin || !queue || other || !(mine || qin.enqueue)) {
          if (mine) queue?.tickets.delete(ticket);
          return denial;
        }
        // A concurrency wait is only an upper bound (slots free on Settle): its waiter polls.
        const told = blocked.by === 'concurrency' ? 0 : wait;
        if (mine) {
          mine.lease = now + told + qin.leaseMs;
        } else {
          ticket = String(++queue.seq).padStart(15, '0');
          queue.tickets.set(ticket, { start: myStart, deadline: now + qin.maxWaitMs, lease: now + told + qin.leaseMs, requests: input.requests, tokens: input.tokens });
          queue.flows.set(qin.flow, myStart + input.requests);
        }
        return { ...denial, ticket };
      }
      if (mine && queue) {
        queue.tickets.delete(ticket);
        queue.vt = Math.max(queue.vt, myStart);
      }
      for (const [name, units] of writes) logAdd(logOf(name), input.reservationId, now + leaseMs, units);
      const dayBucket = bucketOf(now, day);
      for (const name of dayWrites) dayAdd(dayOf(name), dayBucket, input.tokens);
      const expiresAt = now + input.ttlMs;
      for (const key of input.keys) {
        const name = keyName(key);
        admitted.set(name, (admitted.get(name) ?? 0) + input.requests);
        if (key.limits.concurrency) liveInFlight(name, now).set(input.reservationId, expiresAt);
      }
      reservations.set(input.reservationId, {
        keys: input.keys.map((k) => ({
          name: keyName(k),
          ref: { kind: k.kind, id: k.id },
          rpm: k.limits.rpm ?? 0,
          tpm: k.limits.tpm ?? 0,
          tpd: k.limits.tpd ?? 0,
          concurrency: Boolean(k.limits.concurrency),
        })),
        requests: input.requests,
        tokens: input.tokens,
        expiresAt,
        dayBucket,
        requestId: input.requestId,
        leaseMs,
        grantedAt: now,
      });
      if (input.requestId) requestIds.set(input.requestId, { reservationId: input.reservationId, expiresAt });
      return { granted: true, reservationId: input.reservationId, nowMs: now, replayed: false };
    },

    async settle(input: SettleInput): Promise<SettleResult> {
      const now = clock.now();
      const r = liveReservation(input.reservationId, now);
      if (!r) return { found: false, tokensReturned: 0, tokensOverrun: 0, freedSlots: [] };
      reservations.delete(input.reservationId);
      if (r.requestId) requestIds.delete(r.requestId);
      const actual = input.cancelled ? 0 : input.actualTokens;
      const delta = actual - r.tokens;
      const freedSlots: SettleResult['freedSlots'] = [];
      if (r.leaseMs > 0) {
        settleLease(r, input, actual, now);
        return { found: true, tokensReturned: Math.max(0, -delta), tokensOverrun: Math.max(0, delta), freedSlots };
      }
      for (const key of r.keys) {
        if (key.tpm && delta !== 0) {
          // Rewrite the entry to the actual tokens at its original time; an
          // overrun whose entry already left the window is charged now.
          const log = logOf(`${key.name}:tpm`);
          logSum(log, now, W);
          const entry = logRemove(log, input.reservationId);
          if (entry) logAdd(log, input.reservationId, entry.ts, actual);
          else if (delta > 0) logAdd(log, `${input.reservationId}-over`, now, delta);
        }
        if (key.tpd && delta !== 0) {
          // Correct the bucket the reservation charged; an overrun whose bucket
          // already expired is charged now (like TPM).
          const w = dayOf(key.name);
          daySum(w, now, day);
          if (!dayFix(w, r.dayBucket, delta) && delta > 0) dayAdd(w, bucketOf(now, day), delta);
        }
        if (key.rpm && input.cancelled) {
          const log = logOf(`${key.name}:rpm`);
          logSum(log, now, W);
          logRemove(log, input.reservationId);
        }
        if (key.concurrency && inFlight.get(key.name)?.delete(input.reservationId)) freedSlots.push(key.ref);
      }
      return { found: true, tokensReturned: Math.max(0, -delta), tokensOverrun: Math.max(0, delta), freedSlots };
    },

    async cooldown(key, ms): Promise<CooldownResult> {
      const now = clock.now();
      const name = keyName(key);
      const current = cooldowns.get(name) ?? 0;
      const until = now + ms;
      if (current >= until) return { cooldownUntilMs: current, changed: false, epoch: epochs.get(name) ?? 0, nowMs: now };
      cooldowns.set(name, until);
      statuses.set(name, { state: 'cooldown', until });
      return { cooldownUntilMs: until, changed: true, epoch: bumpEpoch(name), nowMs: now };
    },

    async setUnavailable(key, value): Promise<UnavailableResult> {
      const now = clock.now();
      const name = keyName(key);
      if (unavailable.has(name) === value) return { changed: false, epoch: epochs.get(name) ?? 0, nowMs: now };
      if (value) unavailable.add(name);
      else unavailable.delete(name);
      return { changed: true, epoch: bumpEpoch(name), nowMs: now };
    },

    async state(key: LimitedKey): Promise<KeyState> {
      const now = clock.now();
      const name = keyName(key);
      const usage: DimensionUsage[] = [];
      for (const dim of ['rpm', 'tpm'] as const) {
        const limit = key.limits[dim];
        if (!limit) continue;
        const log = logOf(`${name}:${dim}`);
        usage.push({ dimension: dim, ...windowUsage(logSum(log, now, W), log.entries.at(-1)?.ts ?? 0, limit, now, W) });
      }
      if (key.limits.tpd) {
        const w = dayOf(name);
        const used = daySum(w, now, day);
        const newest = newestBucket(w);
        const limit = key.limits.tpd;
        usage.push({
          dimension: 'tpd',
          limit,
          used: Math.min(limit, used),
          remaining: Math.max(0, limit - used),
          resetsAtMs: used > 0 && newest !== undefined ? bucketExpiry(newest, day) : now,
        });
      }
      if (key.limits.concurrency) {
        const members = liveInFlight(name, now);
        const limit = key.limits.concurrency;
        const next = Math.min(...members.values());
        usage.push({
          dimension: 'concurrency',
          limit,
          used: members.size,
          remaining: Math.max(0, limit - members.size),
          resetsAtMs: members.size > 0 ? next : now,
        });
      }
      const until = cooldowns.get(name) ?? 0;
      return {
        usage,
        cooldownUntilMs: until > now ? until : 0,
        unavailable: unavailable.has(name),
        epoch: epochs.get(name) ?? 0,
        admittedRequests: admitted.get(name) ?? 0,
        nowMs: now,
      };
    },

    async markExhausted(key, untilMs) {
      const now = clock.now();
      const name = keyName(key);
      const status = statuses.get(name);
      if (status) {
        status.until = Math.max(status.until, Math.ceil(untilMs));
        return { changed: false, epoch: epochs.get(name) ?? 0, nowMs: now, untilMs: status.until };
      }
      statuses.set(name, { state: 'exhausted', until: Math.ceil(untilMs) });
      return { changed: true, epoch: bumpEpoch(name), nowMs: now, untilMs: Math.ceil(untilMs) };
    },

    async recover(key) {
      const now = clock.now();
      const name = keyName(key);
      const status = statuses.get(name);
      const epoch = epochs.get(name) ?? 0;
      if (!status || unavailable.has(name)) return { recovered: false, epoch, nowMs: now, pendingUntilMs: 0 };
      const until = Math.max(status.until, cooldowns.get(name) ?? 0);
      if (until > now) return { recovered: false, epoch, nowMs: now, pendingUntilMs: until };
      statuses.delete(name);
      return { recovered: true, epoch: bumpEpoch(name), nowMs: now, pendingUntilMs: 0 };
    },

    async tighten(key, remaining) {
      const now = clock.now();
      const name = keyName(key);
      const out = { rpm: false, tpm: false, nowMs: now };
      for (const dim of ['rpm', 'tpm'] as const) {
        const limit = key.limits[dim];
        const left = remaining[dim];
        if (!limit || left === undefined || left < 0) continue;
        const log = logOf(`${name}:${dim}`);
        const missing = limit - Math.min(left, limit) - logSum(log, now, W);
        if (missing > 0) {
          // Leaves the window at the provider's reset when it said (within a window).
          const reset = remaining[dim === 'rpm' ? 'rpmResetAt' : 'tpmResetAt'] ?? 0;
          const ts = reset > now && reset - W < now ? reset - W : now;
          logAdd(log, `provider-${now}-${dim}`, ts, missing);
          out[dim] = true;
        }
      }
      return out;
    },

    async leaveQueue(key, ticket) {
      queues.get(keyName(key))?.tickets.delete(ticket);
    },

    async close() {},
  };
}
