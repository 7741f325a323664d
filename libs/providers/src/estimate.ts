import { countChatTokens } from '@switchyard/tokens';
import { InvalidChatRequestError } from './errors';
import { validateChatRequest } from './validate';
import type { ChatRequest, ProviderKind, Usage } from './types';

export interface RequestTokenEstimate {
  /** Prompt tokens as the provider will bill them (framing included), from @switchyard/tokens. */
  inputTokens: number;
  /** Worst case: the request's maxTokens. */
  outputTokens: number;
  /** inputTokens + outputTokens: what the limiter acquires and the budget reserves before the call. */
  totalTokens: number;
}

/**
 * Pre-call estimate for limiter `Acquire` and budget `Reserve`. Uses the same
 * tokenizer the simulator bills with, so estimates and settlements agree in
 * tests; output is the worst case (maxTokens) because that is what may be spent.
 */
export function estimateRequestTokens(req: ChatRequest, provider: ProviderKind): RequestTokenEstimate {
  validateChatRequest(req, provider);
  const inputTokens = countChatTokens(req.messages, provider);
  return { inputTokens, outputTokens: req.maxTokens, totalTokens: inputTokens + req.maxTokens };
}

export interface Price {
  /** USD per million input tokens. */
  inputPerMillion: number;
  /** USD per million output tokens. */
  outputPerMillion: number;
}

const MICROS_PER_USD = 1_000_000n;
const TOKENS_PER_MILLION = 1_000_000n;

/**
 * Cost in integer micro-dollars (1e-6 USD). Prices are converted to integer
 * micro-dollars per million tokens once (rounded to the nearest micro-dollar:
 * every real price list is exact at that precision), then the product is
 * computed in BigInt and divided with ceiling. Summing floats like
 * 0.15/1e6 * tokens across millions of calls drifts; integers do not, and
 * rounding up means a budget is never under-reserved by a fraction.
 */
export function estimateCostMicros(usage: Usage, price: Price): number {
  checkCount(usage?.inputTokens, 'usage.inputTokens');
  checkCount(usage?.outputTokens, 'usage.outputTokens');
  const inMicros = priceMicros(price?.inputPerMillion, 'price.inputPerMillion');
  const outMicros = priceMicros(price?.outputPerMillion, 'price.outputPerMillion');
  const total = ceilDiv(BigInt(usage.inputTokens) * inMicros, TOKENS_PER_MILLION) + ceilDiv(BigInt(usage.outputTokens) * outMicros, TOKENS_PER_MILLION);
  return Number(total);
}

/** Cost in USD (= estimateCostMicros / 1e6); a float only at the edge, for display and protobuf doubles. */
export function estimateCost(usage: Usage, price: Price): number {
  return estimateCostMicros(usage, price) / Number(MICROS_PER_USD);
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

function checkCount(v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidChatRequestError(field, `must be a non-negative integer (got ${String(v)})`);
  }
}

function priceMicros(v: unknown, field: string): bigint {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new InvalidChatRequestError(field, `must be a non-negative finite number of USD (got ${String(v)})`);
  }
  return BigInt(Math.round(v * Number(MICROS_PER_USD)));
}
