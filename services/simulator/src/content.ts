import { countChatTokens, countTextTokens, type TokenMessage, type TokenProvider } from '@switchyard/tokens';
import { hashString } from './prng';

/**
 * Replies are built from pieces that are each exactly one o200k token
 * (" word" with its leading space, "Sim"+"ulated", "."), so a reply can be cut
 * at max_tokens exactly and streamed one token per chunk. A unit test checks
 * that countTextTokens agrees with the piece count.
 */
export const REPLY_PREFIX = ['Sim', 'ulated', ' answer'];
export const REPLY_WORDS = [
  ' the', ' signal', ' route', ' quota', ' stream', ' token', ' model', ' reply', ' steady', ' window',
  ' budget', ' cache', ' health', ' probe', ' retry', ' fallback', ' limit', ' state', ' queue', ' green',
  ' amber', ' river', ' stone', ' cloud', ' light', ' north', ' south', ' water', ' paper', ' metal',
  ' clock', ' bridge', ' field', ' garden', ' market', ' number', ' simple', ' every', ' small', ' quick',
  ' clear', ' final', ' first', ' second', ' third', ' result', ' value', ' order', ' vector', ' little',
  ' heavy', ' bright', ' silent', ' rapid', ' gentle', ' random', ' moment', ' system', ' network', ' server',
];
const REPLY_END = '.';

export interface PromptInfo {
  tokens: number;
  hash: number;
}

export interface Reply {
  pieces: string[];
  text: string;
  tokens: number;
  finish: 'stop' | 'length' | 'stop_sequence';
  stopSequence: string | null;
}

/** Caches are bounded by clearing: simple, and a load test with a few prompts never clears. */
const MAX_CACHE = 20_000;

/**
 * Tokenizing costs ~40 µs per KiB of prompt; at thousands of requests per
 * second with repeated prompts that would dominate, so counts are cached by
 * the prompt text itself (a Map hashes the string natively).
 */
export function createContentCache() {
  const prompts = new Map<string, PromptInfo>();
  const replies = new Map<string, Reply>();

  function promptInfo(messages: TokenMessage[], provider: TokenProvider): PromptInfo {
    let key = provider as string;
    for (const m of messages) key += '\u0001' + m.role + '\u0002' + m.content;
    let info = prompts.get(key);
    if (!info) {
      if (prompts.size >= MAX_CACHE) prompts.clear();
      info = { tokens: countChatTokens(messages, provider), hash: hashString(key.slice(provider.length)) };
      prompts.set(key, info);
    }
    return info;
  }

  function reply(hash: number, minTokens: number, maxTokensConfigured: number, maxTokens: number | null, stop: string[]): Reply {
    const key = `${hash}:${minTokens}:${maxTokensConfigured}:${maxTokens}:${stop.join('\u0000')}`;
    let r = replies.get(key);
    if (!r) {
      if (replies.size >= MAX_CACHE) replies.clear();
      r = buildReply(hash, minTokens, maxTokensConfigured, maxTokens, stop);
      replies.set(key, r);
    }
    return r;
  }

  return { promptInfo, reply, clear: () => (prompts.clear(), replies.clear()) };
}

/** Deterministic reply for a prompt hash: length in [min, max] tokens, cut by max_tokens or the first stop sequence. */
export function buildReply(hash: number, minTokens: number, maxTokensConfigured: number, maxTokens: number | null, stop: string[]): Reply {
  const length = minTokens + (hash % (maxTokensConfigured - minTokens + 1));
  const full = REPLY_PREFIX.slice();
  let state = hash || 1;
  while (full.length < length - 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    full.push(REPLY_WORDS[(state >>> 0) % REPLY_WORDS.length]!);
  }
  full.push(REPLY_END);
  const fullText = full.join('');

  // Earliest stop sequence wins, as for a real model generating left to right.
  let stopAt = -1;
  let stopSequence: string | null = null;
  for (const s of stop) {
    if (!s) continue;
    const i = fullText.indexOf(s);
    if (i >= 0 && (stopAt < 0 || i < stopAt)) {
      stopAt = i;
      stopSequence = s;
    }
  }
  let pieces = full;
  let finish: Reply['finish'] = 'stop';
  if (stopAt >= 0) {
    pieces = [];
    let len = 0;
    for (const p of full) {
      if (len + p.length <= stopAt) pieces.push(p);
      else {
        if (stopAt > len) pieces.push(p.slice(0, stopAt - len));
        break;
      }
      len += p.length;
    }
    finish = 'stop_sequence';
  }
  if (maxTokens !== null && pieces.length > maxTokens) {
    pieces = pieces.slice(0, maxTokens);
    finish = 'length';
    stopSequence = null;
  }
  const text = pieces.join('');
  return { pieces, text, tokens: countTextTokens(text), finish, stopSequence };
}
