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

/** Result of {@link measureMegabyteCost}: wall time to count 1 MB of each kind of text. */
export interface MegabyteCost {
  /** Text kind → median milliseconds to count 1,000,000 bytes of it. */
  millisPerMB: Record<string, number>;
  /** Text kind → tokens counted in that 1 MB (so a figure can be read as tokens/s). */
  tokensPerMB: Record<string, number>;
  runs: number;
}

/**
 * 1 MB (1,000,000 UTF-8 bytes) of ordinary prose and of the inputs that used
 * to stall the tokenizer: text with no whitespace, where one pre-tokenized
 * piece is the whole megabyte (DNA, a run of one letter, a CJK paragraph
 * without punctuation) or many short pieces (base64).
 */
export function makeMegabyteTexts(): Record<string, string> {
  const MB = 1_000_000;
  let state = 0x2545f491;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const fromAlphabet = (alphabet: string, chars: number) => {
    const out: string[] = [];
    for (let i = 0; i < chars; i++) out.push(alphabet[next() % alphabet.length]!);
    return out.join('');
  };
  const randomBytes = Buffer.alloc((MB * 3) / 4);
  for (let i = 0; i < randomBytes.length; i++) randomBytes[i] = next() & 0xff;
  let cjk = '';
  while (cjk.length < MB / 3) cjk += String.fromCharCode(0x4e00 + (next() % 2000));
  return {
    ordinary: makeSamplePrompts(Math.ceil(MB / 1024)).join('\n').slice(0, MB),
    dna: fromAlphabet('acgt', MB),
    'one-letter': 'a'.repeat(MB),
    base64: randomBytes.toString('base64').slice(0, MB),
    'cjk-no-punctuation': cjk,
  };
}

/** Times {@link countTextTokens} on each of {@link makeMegabyteTexts} (median of `runs`, after one warm-up run). */
export function measureMegabyteCost(runs = 3): MegabyteCost {
  const millisPerMB: Record<string, number> = {};
  const tokensPerMB: Record<string, number> = {};
  for (const [kind, text] of Object.entries(makeMegabyteTexts())) {
    tokensPerMB[kind] = countTextTokens(text);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = process.hrtime.bigint();
      countTextTokens(text);
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);
    millisPerMB[kind] = times[Math.floor(times.length / 2)]!;
  }
  return { millisPerMB, tokensPerMB, runs };
}
