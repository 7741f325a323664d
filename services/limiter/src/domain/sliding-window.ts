/**
 * Sliding log per key and dimension: every admission is an entry (units, time);
 * a key admits `cost` while the units of the entries of the last WINDOW_MS plus
 * `cost` fit in the limit. So the admitted units in EVERY window of 60 s are ≤
 * the limit — exactly, with no window edge (fixed windows admit 2× across an
 * edge) and no refill on top of a burst (a GCRA / token bucket with burst =
 * limit admits the burst and then a full limit's refill: up to 2× in one
 * minute). Under sustained demand an entry leaving the window makes room for
 * the next at once, so nothing is over-throttled either.
 *
 * The Lua in adapters/redis-quota-scripts.ts (wsum/wadd/wdel/wwait) implements
 * the same rules on a ZSET + running sum; this is the in-memory twin.
 */

/** Every limit is per minute (RPM / TPM). Stores accept a shorter window only to run time-scaled tests. */
export const WINDOW_MS = 60_000;

/** Effective limits are clamped here (sums stay exact integers far below 2^53). */
export const MAX_LIMIT = 1_000_000_000;

export interface LogEntry {
  id: string;
  ts: number;
  units: number;
}

export interface SlidingLog {
  /** Ascending by ts. */
  entries: LogEntry[];
  sum: number;
}

export function emptyLog(): SlidingLog {
  return { entries: [], sum: 0 };
}

/** Drops entries that left the window (ts ≤ now − WINDOW_MS); returns the units still in it. */
export function logSum(log: SlidingLog, now: number, windowMs = WINDOW_MS): number {
  let drop = 0;
  while (drop < log.entries.length && log.entries[drop]!.ts <= now - windowMs) {
    log.sum -= log.entries[drop]!.units;
    drop++;
  }
  if (drop > 0) log.entries.splice(0, drop);
  if (log.entries.length === 0) log.sum = 0;
  return log.sum;
}

/** ms until `need` more units fit (oldest entries leave first); 0 if they fit now. */
export function logWait(log: SlidingLog, need: number, limit: number, now: number, windowMs = WINDOW_MS): number {
  const excess = logSum(log, now, windowMs) + need - limit;
  if (excess <= 0) return 0;
  let freed = 0;
  for (const e of log.entries) {
    freed += e.units;
    if (freed >= excess) return e.ts + windowMs - now;
  }
  return windowMs;
}

export function logAdd(log: SlidingLog, id: string, ts: number, units: number): void {
  if (units <= 0) return;
  let at = log.entries.length;
  while (at > 0 && log.entries[at - 1]!.ts > ts) at--;
  log.entries.splice(at, 0, { id, ts, units });
  log.sum += units;
}

/** Removes an entry; returns it, or undefined when it already left the window. */
export function logRemove(log: SlidingLog, id: string): LogEntry | undefined {
  const at = log.entries.findIndex((e) => e.id === id);
  if (at < 0) return undefined;
  const [entry] = log.entries.splice(at, 1);
  log.sum -= entry!.units;
  return entry;
}

export interface WindowUsage {
  limit: number;
  used: number;
  remaining: number;
  /** When the window is empty again (the newest entry leaves). */
  resetsAtMs: number;
}

export function windowUsage(used: number, newestTs: number, limit: number, now: number, windowMs = WINDOW_MS): WindowUsage {
  return {
    limit,
    used: Math.min(limit, used),
    remaining: Math.max(0, limit - used),
    resetsAtMs: used > 0 ? newestTs + windowMs : now,
  };
}
