/**
 * Bucketed sliding window for tokens per day (TPD). An exact per-admission log
 * over 24 h (like the RPM/TPM one, domain/sliding-window.ts) would hold one
 * entry per request for a whole day — millions at production rates — so a day
 * is kept as buckets instead: the tokens of an admission go to the bucket of
 * its admission minute (`floor(now / bucketMs)`), and a bucket counts until its
 * END + 24 h. An admission at t therefore counts at least until t + 24 h (and
 * at most one bucket longer): the window is never shorter than a day, so no
 * sliding 24 h holds more than the limit. The price is conservative: capacity
 * comes back up to one bucket (a minute) late, never early. A running sum keeps
 * the check O(expired buckets), not O(buckets per day).
 *
 * The Lua in adapters/redis-quota-scripts.ts (dsum/dadd/dfix/dwait) implements
 * the same rules on a ZSET of bucket indices + a HASH of bucket tokens + a sum
 * key; this is the in-memory twin.
 */

/** A day. Stores accept a shorter one only to run time-scaled tests. */
export const DAY_WINDOW_MS = 86_400_000;

/** Buckets per day window: one per minute of a real day. */
export const DAY_BUCKETS = 1_440;

/** Bucket length for a day window: a minute for a real day, the same 1/1440 of a time-scaled one. */
export function dayBucketMs(dayWindowMs: number): number {
  return Math.max(1, Math.floor(dayWindowMs / DAY_BUCKETS));
}

export interface DayWindowShape {
  windowMs: number;
  bucketMs: number;
}

export interface DayWindow {
  /** bucket index → tokens; ascending by index (buckets are only ever created at the newest index). */
  buckets: Map<number, number>;
  sum: number;
}

export function emptyDayWindow(): DayWindow {
  return { buckets: new Map(), sum: 0 };
}

export function bucketOf(now: number, shape: DayWindowShape): number {
  return Math.floor(now / shape.bucketMs);
}

/** When bucket `b` stops counting: its end + the window. */
export function bucketExpiry(b: number, shape: DayWindowShape): number {
  return (b + 1) * shape.bucketMs + shape.windowMs;
}

/** Drops buckets whose end + window has passed; returns the tokens still counted. */
export function daySum(w: DayWindow, now: number, shape: DayWindowShape): number {
  for (const [b, units] of w.buckets) {
    if (bucketExpiry(b, shape) > now) break;
    w.buckets.delete(b);
    w.sum -= units;
  }
  if (w.buckets.size === 0) w.sum = 0;
  return w.sum;
}

/** ms until `need` more tokens fit (the oldest buckets expire first); 0 if they fit now. */
export function dayWait(w: DayWindow, need: number, limit: number, now: number, shape: DayWindowShape): number {
  const excess = daySum(w, now, shape) + need - limit;
  if (excess <= 0) return 0;
  let freed = 0;
  for (const [b, units] of w.buckets) {
    freed += units;
    if (freed >= excess) return bucketExpiry(b, shape) - now;
  }
  return shape.windowMs + shape.bucketMs;
}

/** Adds tokens to bucket `b` (the admission's bucket; a new bucket is always the newest). */
export function dayAdd(w: DayWindow, b: number, units: number): void {
  if (units <= 0) return;
  w.buckets.set(b, (w.buckets.get(b) ?? 0) + units);
  w.sum += units;
}

/**
 * Corrects bucket `b` by `delta` tokens (a settle: negative gives unused tokens
 * back, positive charges an overrun from the admission's minute). Returns false
 * when the bucket already expired (call daySum first): nothing is left there to correct.
 */
export function dayFix(w: DayWindow, b: number, delta: number): boolean {
  const units = w.buckets.get(b);
  if (units === undefined) return false;
  // An emptied bucket stays until it expires: another reservation of the same
  // minute may still settle an overrun into it.
  const next = Math.max(0, units + delta);
  w.sum += next - units;
  w.buckets.set(b, next);
  return true;
}

/** The newest bucket still counted (state reports when the window is empty again). */
export function newestBucket(w: DayWindow): number | undefined {
  let last: number | undefined;
  for (const b of w.buckets.keys()) last = b;
  return last;
}
