/**
 * Key builders. Every key carries a hash tag (`{...}`) naming the entity a
 * script works on (a deployment, a tenant), so all keys one script touches hash
 * to the same slot and the design works unchanged on Redis Cluster.
 */

const PREFIX = /^[a-z][a-z0-9_-]*(:[a-z0-9_-]+)*$/i;
const FORBIDDEN = /[{}\s\u0000-\u001f\u007f]/;

function assertPart(field: string, value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`${field} must be a finite number, got ${value}`);
    return String(value);
  }
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${field} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  if (FORBIDDEN.test(value)) {
    throw new TypeError(`${field} ${JSON.stringify(value)} must not contain braces (they delimit hash tags) or whitespace`);
  }
  return value;
}

/**
 * `key('sy:lim', 'gpt4o-east', 'rpm', 'window')` → `sy:lim:{gpt4o-east}:rpm:window`.
 * Throws naming the bad argument on empty values, braces or whitespace.
 */
export function key(prefix: string, tag: string, ...parts: Array<string | number>): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new TypeError(`key prefix ${JSON.stringify(prefix)} is invalid: expected segments like "sy:lim"`);
  }
  const segments = [prefix, `{${assertPart('hash tag', tag)}}`];
  parts.forEach((part, i) => segments.push(assertPart(`key part ${i + 1}`, part)));
  return segments.join(':');
}

/** The part of a key Redis Cluster hashes: the first non-empty `{...}`, else the whole key. */
export function hashTagOf(k: string): string {
  const open = k.indexOf('{');
  if (open >= 0) {
    const close = k.indexOf('}', open + 1);
    if (close > open + 1) return k.slice(open + 1, close);
  }
  return k;
}

/** Throws unless all keys hash to the same slot (same hash tag). */
export function assertSameSlot(context: string, keys: string[]): void {
  if (keys.length < 2) return;
  const tag = hashTagOf(keys[0]!);
  const other = keys.find((k) => hashTagOf(k) !== tag);
  if (other !== undefined) {
    throw new Error(`${context}: keys must share one hash tag for Redis Cluster; "${keys[0]}" and "${other}" do not`);
  }
}
