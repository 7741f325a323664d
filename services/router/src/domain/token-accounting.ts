import type { ChatRequest, ProviderKind, Usage } from '@switchyard/providers';
import { estimateCostMicros, estimateRequestTokens, type RequestTokenEstimate } from '@switchyard/providers';
import type { Candidate } from './candidates';

/**
 * What a call reserves and what it settles, per provider: the limiter's
 * tokens (Acquire → Settle) and the budget's micro-USD (Reserve → Commit).
 * One module so that "reserved" and "counted" cannot drift apart.
 */

/** What one call is estimated to use on each candidate, before anything is sent. */
export interface CallEstimate {
  /** Estimated prompt tokens per candidate (providers count differently). */
  inputTokens: Map<string, number>;
  /** Worst case (prompt + max_tokens) at each candidate's price, micro-USD. */
  worstCaseMicros: Map<string, number>;
}

function priceOf(c: Candidate) {
  return { inputPerMillion: c.deployment.price.inputPerMillionUsd, outputPerMillion: c.deployment.price.outputPerMillionUsd };
}

/** Prompt tokens and worst-case cost of every candidate. */
export function estimateCall(chat: ChatRequest, ordered: readonly Candidate[]): CallEstimate {
  const inputTokens = new Map<string, number>();
  const worstCaseMicros = new Map<string, number>();
  // The estimate depends only on the provider kind, and tokenizing the prompt
  // costs ~55 µs per KiB: once per kind, not once per candidate.
  const byProvider = new Map<string, RequestTokenEstimate>();
  for (const c of ordered) {
    const provider = c.deployment.provider;
    let estimate = byProvider.get(provider);
    if (!estimate) byProvider.set(provider, (estimate = estimateRequestTokens(chat, provider)));
    inputTokens.set(c.name, estimate.inputTokens);
    worstCaseMicros.set(c.name, estimateCostMicros({ inputTokens: estimate.inputTokens, outputTokens: estimate.outputTokens }, priceOf(c)));
  }
  return { inputTokens, worstCaseMicros };
}

/** What the budget reserves for a call: its worst case at the most expensive candidate it may use. */
export function reserveMicros(estimate: CallEstimate, usable: readonly Candidate[]): number {
  return Math.max(0, ...usable.map((c) => estimate.worstCaseMicros.get(c.name) ?? 0));
}

/** Tokens an attempt reserves at Acquire: the prompt estimate plus max_tokens. */
export function reservedTokens(promptTokens: number, maxTokens: number): number {
  return promptTokens + maxTokens;
}

/**
 * Tokens an attempt that reached the provider counts against the deployment's
 * TPM, as the provider itself counts them. OpenAI and Azure charge prompt +
 * max_tokens when they admit a request and give nothing back for a short
 * answer (nor for a failed one), so settling to the actual usage would let our
 * view drift below theirs and earn 429s; only an overrun is added. Anthropic
 * counts input and output tokens as used, so its reservation settles to actual.
 */
export function countedTokens(provider: ProviderKind, reserved: number, usage: Usage | undefined): number {
  const actual = usage ? usage.inputTokens + usage.outputTokens : 0;
  return provider === 'anthropic' ? actual : Math.max(actual, reserved);
}

/** Actual cost of an answer on `c`, micro-USD: what the budget commits. */
export function costMicros(c: Candidate, usage: Usage): number {
  return estimateCostMicros(usage, priceOf(c));
}
