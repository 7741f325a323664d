import { countTextTokens } from './count';

/** Result of {@link measureTokenizerCost}. */
export interface TokenizerCost {
  /** Mean wall time to count one 1 KiB prompt, in microseconds. */
  microsPerKiB: number;
  /** Tokens in one sample (so the figure can be related to tokens/s). */
  tokensPerKiB: number;
  samples: number;
}

const WORDS = [
  'the', 'gateway', 'retries', 'provider', 'quota', 'latency', 'budget', 'stream', 'token', 'request',
  'answer', 'deployment', 'breaker', 'limiter', 'cache', 'fallback', 'tenant', 'model', 'error', 'window',
  'Rate', 'limit', 'exceeded;', 'please', 'wait', '42', 'ms', 'JSON', '{"a":1}', 'naïve', 'café', '→',
];

/**
 * Builds `count` distinct ~1 KiB English-like prompts. They differ from each
 * other (a seeded walk through a word list) so the tokenizer's merge cache
 * cannot turn the measurement into a cache-hit benchmark.
 */
export function makeSamplePrompts(count: number, bytes = 1024): string[] {
  let state = 0x9e3779b9;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const prompts: string[] = [];
  for (let i = 0; i < count; i++) {
    let text = `Prompt ${i}:`;
    while (Buffer.byteLength(text) < bytes) text += ' ' + WORDS[next() % WORDS.length] + (next() % 7 === 0 ? String(next() % 1000) : '');
    prompts.push(text);
  }
  return prompts;
}

/**
 * Measures what one call to {@link countTextTokens} costs per KiB of prompt,
 * so the gateway can decide whether tokenizing on the hot path is affordable.
 */
export function measureTokenizerCost(samples = 2000): TokenizerCost {
  const prompts = makeSamplePrompts(samples);
  // Warm the JIT on a separate set so the timed loop measures steady state.
  for (const p of makeSamplePrompts(200, 1024)) countTextTokens(p + ' warm');
  let tokens = 0;
  const start = process.hrtime.bigint();
  for (const p of prompts) tokens += countTextTokens(p);
  const elapsedNs = Number(process.hrtime.bigint() - start);
  return { microsPerKiB: elapsedNs / samples / 1000, tokensPerKiB: tokens / samples, samples };
}
