/**
 * OpenAI reports rate-limit resets (`x-ratelimit-reset-*`) as Go
 * `time.Duration` strings: `1s`, `6m0s`, `12ms`, `23h47m36.648s`, `0s`.
 * Clients (ours included) parse exactly that grammar, so we emit it exactly:
 * sub-second values in ms (fraction trimmed), otherwise h/m/s with the
 * seconds carrying up to millisecond precision and trailing zeros trimmed.
 */
export function formatOpenAIDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  // Millisecond precision is all a header needs; microsecond rounding keeps
  // values such as 0.5 ms readable ("500µs" would surprise most parsers).
  const totalMs = Math.round(ms * 1000) / 1000;
  if (totalMs < 1000) return `${trimNumber(totalMs)}ms`;
  const roundedMs = Math.round(totalMs);
  const hours = Math.floor(roundedMs / 3_600_000);
  const minutes = Math.floor((roundedMs % 3_600_000) / 60_000);
  const seconds = (roundedMs % 60_000) / 1000;
  const s = `${trimNumber(seconds)}s`;
  if (hours > 0) return `${hours}h${minutes}m${s}`;
  if (minutes > 0) return `${minutes}m${s}`;
  return s;
}

function trimNumber(n: number): string {
  // toFixed(3) then trim: 36.648 -> "36.648", 1.5 -> "1.5", 2 -> "2".
  return n.toFixed(3).replace(/\.?0+$/, '');
}

/**
 * Anthropic reports resets as RFC 3339 instants with whole seconds
 * (`2025-01-01T12:00:07Z`). Rounded up so a client that waits until the
 * instant is never early.
 */
export function formatRfc3339(epochMs: number): string {
  const whole = Math.ceil(epochMs / 1000) * 1000;
  return new Date(whole).toISOString().replace('.000Z', 'Z');
}

/** `retry-after` is whole seconds, rounded up so waiting that long always suffices (minimum 1 when any wait is needed). */
export function retryAfterSeconds(ms: number): number {
  return ms <= 0 ? 0 : Math.max(1, Math.ceil(ms / 1000));
}
