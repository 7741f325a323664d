import { CacheStatus, FinishReason, Role, type Attempt } from '@switchyard/contracts';
import type { DeploymentRef } from '@switchyard/contracts';

/** What a whole answer (CompleteResponse) and a stream's Final both carry. */
export interface AnswerFacts {
  servedBy?: DeploymentRef | undefined;
  attempts: readonly Attempt[];
  cacheStatus: CacheStatus;
  degraded: boolean;
  degradedReason: string;
  costMicros: bigint;
  /** The router's id of the call (its logs and events), distinct from the edge's x-request-id. */
  requestId: string;
}

const CACHE_NAMES: Record<number, string> = {
  [CacheStatus.MISS]: 'miss',
  [CacheStatus.HIT]: 'hit',
  [CacheStatus.STALE]: 'stale',
  [CacheStatus.BYPASS]: 'bypass',
  [CacheStatus.UNAVAILABLE]: 'unavailable',
  [CacheStatus.COALESCED]: 'coalesced',
};

/** Header values must be visible ASCII: a reason quoting upstream text is cut and cleaned. */
const headerSafe = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 512);

/** x-switchyard-* answer headers: who served it, how many attempts, cache status, degraded (+ reason), cost. */
export function answerHeaders(a: AnswerFacts): Record<string, string> {
  return {
    'x-switchyard-served-by': a.servedBy?.deployment ?? '',
    'x-switchyard-attempts': String(a.attempts.length),
    'x-switchyard-cache': CACHE_NAMES[a.cacheStatus] ?? 'none',
    'x-switchyard-degraded': String(a.degraded),
    ...(a.degraded && a.degradedReason ? { 'x-switchyard-degraded-reason': headerSafe(a.degradedReason) } : {}),
    'x-switchyard-cost-micros': a.costMicros.toString(),
    ...(a.requestId ? { 'x-switchyard-request-id': a.requestId } : {}),
  };
}

export const OPENAI_FINISH: Record<number, string> = {
  [FinishReason.STOP]: 'stop',
  [FinishReason.LENGTH]: 'length',
  [FinishReason.CONTENT_FILTER]: 'content_filter',
  [FinishReason.TOOL_CALLS]: 'tool_calls',
};

export const ANTHROPIC_STOP: Record<number, string> = {
  [FinishReason.STOP]: 'end_turn',
  [FinishReason.LENGTH]: 'max_tokens',
  [FinishReason.CONTENT_FILTER]: 'refusal',
  [FinishReason.TOOL_CALLS]: 'tool_use',
};

export { Role };
