import type { SwitchyardConfig } from '@switchyard/config';
import type { Clock } from '@switchyard/util';

/**
 * This router's own view of the limits it admits against, for when the limiter
 * service cannot answer (DESIGN "When our own dependencies fail"): every
 * deployment's and tenant's limits divided by the live routers, on sliding
 * windows kept here. Same rules as the limiter's sliding log (an admission
 * fits while the units of the last window plus its own fit the limit, so no
 * window of `windowMs` ever holds more than the share), but O(1) per admission
 * and settle: it also records every admission the shared limiter makes, so a
 * switch to the share starts from what this router really admitted in the
 * last window, not from an empty window (which would let a burst of a whole
 * share through at the start of every outage).
 *
 * TPD is not shared out: a day's use cannot be known from this router's last
 * window, and an outage of the limiter service is measured in seconds.
 */

export type ShareDimension = 'rpm' | 'tpm' | 'concurrency';

/** Effective limits of one key (headroom applied); an absent dimension is unlimited. */
export interface ShareLimits {
  rpm?: number;
  tpm?: number;
  concurrency?: number;
}

export interface ShareKey {
  kind: 'deployment' | 'tenant';
  id: string;
  limits: ShareLimits;
}

export type ShareDecision =
  | { granted: true; reservationId: string }
  | {
      granted: false;
      /** The key with the longest wait. */
      blocked: { kind: ShareKey['kind']; id: string };
      dimension: ShareDimension;
      /** This router's share of that limit right now. */
      share: number;
      /** ms until the share fits the request (concurrency: until the oldest slot's reservation expires, an upper bound). */
      retryAfterMs: number;
    };

export interface LocalShare {
  /**
   * `enforce`: admit only within this router's share (limit ÷ live routers),
   * all keys or none. Without it the admission is only counted (the shared
   * limiter granted it) and always succeeds.
   */
  acquire(keys: readonly ShareKey[], tokens: number, options: { enforce: boolean }): ShareDecision;
  /**
   * The attempt is over: `tokens` is what it counts against TPM (replaces the
   * estimate), `'cancelled'` gives back the request and its tokens (it never
   * reached the provider). Frees its concurrency slots. False when unknown
   * (already settled, or expired: an expired reservation's units stay counted).
   */
  settle(reservationId: string, usage: { tokens: number } | 'cancelled'): boolean;
}

export interface LocalShareOptions {
  clock: Clock;
  /** Length of the RPM/TPM window (60 000 ms; shorter only in time-scaled tests). */
  windowMs: number;
  /** Live routers (≥ 1) sharing every limit. */
  liveRouters(): number;
  /** A reservation never settled frees its concurrency slots after this long (its units stay counted). */
  reservationTtlMs: number;
}

interface Entry {
  ts: number;
  units: number;
  /** Left the window: a settle no longer changes the window's sum. */
  gone: boolean;
}

interface Log {
  entries: Entry[];
  /** Index of the oldest entry still in the window. */
  head: number;
  sum: number;
}

interface Reservation {
  expiresAt: number;
  tokenEntries: Array<{ log: Log; entry: Entry }>;
  requestEntries: Array<{ log: Log; entry: Entry }>;
  slots: Array<Map<string, number>>;
}

const DIMENSIONS: readonly ShareDimension[] = ['rpm', 'tpm', 'concurrency'];

/** Each dimension of `limits` divided among `routers` (floor: the shares never add up to more than the limit). */
export function shareOf(limits: ShareLimits, routers: number): ShareLimits {
  const out: ShareLimits = {};
  for (const dim of DIMENSIONS) {
    const v = limits[dim];
    if (v !== undefined) out[dim] = Math.floor(v / Math.max(1, routers));
  }
  return out;
}

const effective = (limit: number | undefined, factor: number): number | undefined =>
  limit === undefined ? undefined : Math.max(1, Math.floor(limit * factor));

/**
 * The keys one attempt is admitted on, with the limits the limiter service
 * applies to them: a deployment's published limits × `defaults.headroom`, a
 * tenant's limits as written. Keys without any limit are left out.
 */
export function shareKeys(gateway: SwitchyardConfig, deployment: string, tenant: string): ShareKey[] {
  const keys: ShareKey[] = [];
  const d = Object.hasOwn(gateway.deployments, deployment) ? gateway.deployments[deployment] : undefined;
  if (d) {
    const h = gateway.defaults.headroom;
    const limits = prune({ rpm: effective(d.limits.rpm, h), tpm: effective(d.limits.tpm, h), concurrency: effective(d.limits.concurrency, h) });
    if (Object.keys(limits).length > 0) keys.push({ kind: 'deployment', id: deployment, limits });
  }
  const t = Object.hasOwn(gateway.tenants, tenant) ? gateway.tenants[tenant] : undefined;
  if (t) {
    const limits = prune({ rpm: t.limits.rpm, tpm: t.limits.tpm });
    if (Object.keys(limits).length > 0) keys.push({ kind: 'tenant', id: tenant, limits });
  }
  return keys;
}

function prune(limits: ShareLimits): ShareLimits {
  const out: ShareLimits = {};
  for (const dim of DIMENSIONS) if (limits[dim] !== undefined) out[dim] = limits[dim];
  return out;
}

export function createLocalShare(options: LocalShareOptions): LocalShare {
  const { clock, windowMs, reservationTtlMs } = options;
  if (!(windowMs > 0)) throw new Error(`local share windowMs: must be > 0, got ${windowMs}`);
  if (!(reservationTtlMs > 0)) throw new Error(`local share reservationTtlMs: must be > 0, got ${reservationTtlMs}`);
  const logs = new Map<string, Log>();
  /** key → reservation id → when its slot frees itself. */
  const inFlight = new Map<string, Map<string, number>>();
  const reservations = new Map<string, Reservation>();
  let seq = 0;
  let operations = 0;

  const logOf = (name: string): Log => {
    let log = logs.get(name);
    if (!log) logs.set(name, (log = { entries: [], head: 0, sum: 0 }));
    return log;
  };

  /** Drops the entries that left the window; returns the units still in it. */
  const windowSum = (log: Log, now: number): number => {
    while (log.head < log.entries.length && log.entries[log.head]!.ts <= now - windowMs) {
      const e = log.entries[log.head++]!;
      e.gone = true;
      log.sum -= e.units;
    }
    // Compact now and then, not on every drop: amortised O(1).
    if (log.head > 1024 && log.head * 2 > log.entries.length) {
      log.entries = log.entries.slice(log.head);
      log.head = 0;
    }
    if (log.head === log.entries.length) log.sum = 0;
    return log.sum;
  };

  /** ms until `need` more units fit under `limit` (the oldest entries leave first). */
  const waitFor = (log: Log, need: number, limit: number, now: number): number => {
    const excess = windowSum(log, now) + need - limit;
    if (excess <= 0) return 0;
    let freed = 0;
    for (let i = log.head; i < log.entries.length; i++) {
      const e = log.entries[i]!;
      freed += e.units;
      if (freed >= excess) return e.ts + windowMs - now;
    }
    return windowMs;
  };

  const append = (log: Log, ts: number, units: number): Entry => {
    const entry = { ts, units, gone: false };
    log.entries.push(entry);
    log.sum += units;
    return entry;
  };

  const liveSlots = (name: string, now: number): Map<string, number> => {
    let slots = inFlight.get(name);
    if (!slots) inFlight.set(name, (slots = new Map()));
    for (const [id, until] of slots) if (until <= now) slots.delete(id);
    return slots;
  };

  /** Reservations never settled go after their TTL; sweep now and then so the map stays bounded. */
  const sweep = (now: number) => {
    if (++operations % 1_000 !== 0) return;
    for (const [id, r] of reservations) if (r.expiresAt <= now) reservations.delete(id);
    for (const [name, log] of logs) if (windowSum(log, now) === 0 && log.head === log.entries.length) logs.delete(name);
  };

  return {
    acquire(keys, tokens, { enforce }) {
      const now = clock.now();
      sweep(now);
      if (enforce) {
        const routers = Math.max(1, options.liveRouters());
        let blocked: Extract<ShareDecision, { granted: false }> | undefined;
        const block = (key: ShareKey, dimension: ShareDimension, share: number, retryAfterMs: number) => {
          if (!blocked || retryAfterMs > blocked.retryAfterMs) blocked = { granted: false, blocked: { kind: key.kind, id: key.id }, dimension, share, retryAfterMs };
        };
        for (const key of keys) {
          const share = shareOf(key.limits, routers);
          const name = `${key.kind}:${key.id}`;
          for (const [dim, cost] of [['rpm', 1], ['tpm', tokens]] as const) {
            const limit = share[dim];
            if (limit === undefined) continue;
            // A share of 0 (limit below the router count) admits nothing here.
            const wait = limit === 0 ? windowMs : waitFor(logOf(`${name}:${dim}`), cost, limit, now);
            if (wait > 0) block(key, dim, limit, wait);
          }
          const slots = share.concurrency;
          if (slots !== undefined) {
            const held = liveSlots(name, now);
            if (held.size >= slots) {
              const frees = [...held.values()].sort((a, b) => a - b);
              block(key, 'concurrency', slots, slots === 0 ? windowMs : frees[held.size - slots]! - now);
            }
          }
        }
        if (blocked) return blocked;
      }
      const id = `router-local-${++seq}`;
      const reservation: Reservation = { expiresAt: now + reservationTtlMs, tokenEntries: [], requestEntries: [], slots: [] };
      for (const key of keys) {
        const name = `${key.kind}:${key.id}`;
        if (key.limits.rpm !== undefined) {
          const log = logOf(`${name}:rpm`);
          windowSum(log, now);
          reservation.requestEntries.push({ log, entry: append(log, now, 1) });
        }
        if (key.limits.tpm !== undefined) {
          const log = logOf(`${name}:tpm`);
          windowSum(log, now);
          reservation.tokenEntries.push({ log, entry: append(log, now, tokens) });
        }
        if (key.limits.concurrency !== undefined) {
          const held = liveSlots(name, now);
          held.set(id, reservation.expiresAt);
          reservation.slots.push(held);
        }
      }
      reservations.set(id, reservation);
      return { granted: true, reservationId: id };
    },

    settle(reservationId, usage) {
      const r = reservations.get(reservationId);
      if (!r) return false;
      reservations.delete(reservationId);
      const now = clock.now();
      if (r.expiresAt <= now) return false;
      for (const held of r.slots) held.delete(reservationId);
      if (usage === 'cancelled') {
        for (const { log, entry } of [...r.requestEntries, ...r.tokenEntries]) {
          windowSum(log, now);
          if (!entry.gone) log.sum -= entry.units;
          entry.units = 0;
        }
        return true;
      }
      for (const { log, entry } of r.tokenEntries) {
        windowSum(log, now);
        const delta = usage.tokens - entry.units;
        if (!entry.gone) {
          entry.units = usage.tokens;
          log.sum += delta;
        } else if (delta > 0) {
          // The estimate already left the window; an overrun still counts, from now.
          append(log, now, delta);
        }
      }
      return true;
    },
  };
}
