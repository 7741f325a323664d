import type { RateLimitSnapshot } from '@switchyard/providers';

/** At most one report per deployment per this long: the limiter only needs the latest view. */
export const REPORT_INTERVAL_MS = 100;

/**
 * Which successful answers' rate-limit headers are worth a limiter Observe.
 * The limiter only ever tightens its view to what the provider reports, and
 * with the default headroom the provider shows at least a fifth of its bucket
 * left while we are its only client; so a bucket more than half full carries
 * no news. Below half (someone else shares the account, or the limits in our
 * config are wrong), and always when it says zero, report, throttled per
 * deployment so a busy replica adds a few Observes a second, not one per call.
 */
export function createRateLimitReports(intervalMs = REPORT_INTERVAL_MS) {
  const lastSent = new Map<string, number>();
  return {
    shouldReport(deployment: string, snapshot: RateLimitSnapshot | undefined, now: number): boolean {
      if (!snapshot || !carriesNews(snapshot)) return false;
      const last = lastSent.get(deployment);
      if (last !== undefined && now - last < intervalMs) return false;
      lastSent.set(deployment, now);
      return true;
    },
  };
}

export type RateLimitReports = ReturnType<typeof createRateLimitReports>;

function carriesNews(s: RateLimitSnapshot): boolean {
  const buckets = [s.requests, s.tokens, s.inputTokens, s.outputTokens];
  return buckets.some((b) => b?.remaining !== undefined && (b.remaining === 0 || b.limit === undefined || b.remaining * 2 < b.limit));
}
