import { hash } from 'node:crypto';
import { O200K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';
import { countMergedTokens } from './merge';
import { o200kVocabulary, type Vocabulary } from './vocabulary';

/** Providers whose chat framing we know how to approximate. */
export type TokenProvider = 'openai' | 'azure' | 'anthropic' | 'openai-compatible';

/** The minimal message shape both the simulator and the gateway can produce. */
export interface TokenMessage {
  role: string;
  content: string;
}

/**
 * A pre-tokenized piece longer than this many UTF-8 bytes is merged in chunks
 * of at most this size instead of whole. Pieces that long only come from text
 * without whitespace or punctuation (DNA, a run of one letter, spaces, a CJK
 * paragraph, emoji); ordinary words are a few bytes. Merging whole is already
 * O(n log n) (./merge.ts), but the heap outgrows the CPU cache on a megabyte
 * piece and costs ~2× per byte; chunks of 1 KiB stay fast.
 */
export const LONG_PIECE_CHUNK_BYTES = 1024;

/**
 * Tokens added per chunk boundary so the chunked count stays an upper bound.
 * A cut stops merges across it, which usually costs a token or two more, but
 * BPE is greedy: a merge across the cut can also block larger merges on either
 * side, so a chunked count can come out lower than the whole piece's. Seeded
 * tests (count.spec.ts) measure one cut's effect on pathological pieces of 15
 * alphabets: between -2 and +{@link MAX_CUT_SURPLUS} tokens (-2 is rare: two
 * letters alternating). Adding 3 per cut covers the low side with a token of
 * margin. For a piece cut c times:
 *   exact ≤ estimate ≤ exact + 5·c,   c ≤ ⌈bytes / 1021⌉ − 1,
 * i.e. at most 5 tokens over per KiB of over-long piece: ≤ ~5,000 tokens on
 * a 1,000,000-byte prompt with no whitespace (about 1 % of DNA's ~470,000
 * tokens, 4 % of one letter repeated; 1 MB of spaces is only ~7,800 tokens,
 * so there it is most of the figure, but still ≤ 0.5 % of the bytes), and
 * exact whenever no piece exceeds 1 KiB (all ordinary prose and code).
 */
export const TOKENS_PER_CUT = 3;

/** The most one cut was measured to add to a piece's count (see {@link TOKENS_PER_CUT}). */
export const MAX_CUT_SURPLUS = 2;

// Reused encode buffer for ordinary pieces; larger pieces get their own.
const utf8Encoder = new TextEncoder();
let pieceBuffer = new Uint8Array(4096);

function utf8Of(piece: string): { bytes: Uint8Array; length: number } {
  const worst = piece.length * 3; // UTF-16 unit → ≤ 3 bytes (a surrogate pair is 2 units → 4 bytes)
  const bytes = worst <= pieceBuffer.length ? pieceBuffer : worst <= 65536 ? (pieceBuffer = new Uint8Array(worst)) : new Uint8Array(worst);
  const { written } = utf8Encoder.encodeInto(piece, bytes);
  return { bytes, length: written };
}

/**
 * Tokens in one pre-tokenized piece: one if its bytes are a token (most words
 * are), else its merged count.
 */
function countPieceTokens(vocab: Vocabulary, piece: string): number {
  const { bytes, length } = utf8Of(piece);
  if (vocab.tokenOfBytes(bytes, 0, length) >= 0) return 1;
  if (length <= LONG_PIECE_CHUNK_BYTES) return countMergedTokens(vocab, bytes, 0, length);
  let total = 0;
  for (let start = 0; start < length; ) {
    let end = Math.min(length, start + LONG_PIECE_CHUNK_BYTES);
    // Cut between characters, never inside one: the bytes of a character
    // merge with each other first, so a cut inside one would cost more.
    while (end < length && end > start + 1 && (bytes[end] & 0xc0) === 0x80) end--;
    total += countMergedTokens(vocab, bytes, start, end);
    if (end < length) total += TOKENS_PER_CUT;
    start = end;
  }
  return total;
}

/**
 * OpenAI chat framing (the "cookbook" rule for gpt-3.5-turbo-0613 and later,
 * still accurate to within a token or two for gpt-4o): every message costs
 * `<|start|>{role}\n ... <|end|>` = 3 tokens plus its role and content, and the
 * reply is primed with `<|start|>assistant<|message|>` = 3 tokens. The role is
 * counted with the same BPE, so it is not folded into the constant.
 */
const OPENAI_TOKENS_PER_MESSAGE = 3;
const OPENAI_REPLY_PRIMING = 3;

/**
 * Anthropic does not publish its tokenizer. Measured against the
 * `count_tokens` endpoint, Claude tokenizers produce roughly 5-15 % more tokens
 * than o200k_base for English prose and code, so we take the o200k count of
 * the same framed conversation and add 10 %, rounding up. Rounding up matters:
 * the gateway uses this figure to reserve quota and budget, and an estimate
 * that errs low lets requests through that the provider then rejects.
 */
const ANTHROPIC_FACTOR = 1.1;

/**
 * Builds the tokenizer's tables now (~0.1–0.2 s of one core) instead of inside
 * the first request that counts, where it would eat into that call's deadline.
 * Services call it once at start; counting without it is correct, only slower
 * the first time.
 */
export function loadTokenizer(): void {
  o200kVocabulary();
}

/**
 * Tokens in a piece of text under o200k_base (the gpt-4o / gpt-4.1 / o-series
 * encoding), in time linear in the text for every input: exact whenever no
 * pre-tokenized piece exceeds {@link LONG_PIECE_CHUNK_BYTES}, else an upper
 * bound within the margin documented on {@link TOKENS_PER_CUT}. "Exact" is
 * gpt-tokenizer's count (the tests compare against it), except on text with
 * U+FEFF, which gpt-tokenizer miscounts (its byte lookups strip it as a BOM).
 *
 * Pre-tokenization is gpt-tokenizer's own o200k split, so pieces are the
 * same as its; special-token strings (`<|endoftext|>`) in user text are split
 * and counted as ordinary text, as a provider bills them, never rejected.
 * gpt-tokenizer's own count is not used because its merge is quadratic in a
 * piece's length: 120,000 characters without whitespace took ~7 s.
 */
export function countTextTokens(text: string): number {
  if (text.length === 0) return 0;
  if (text.length < MEMO_MIN_CHARS) return countUncached(text);
  const key = hash('sha256', text, 'base64');
  let count = memo.get(key);
  if (count === undefined) {
    count = countUncached(text);
    if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
    memo.set(key, count);
  }
  return count;
}

/**
 * Counts of the longer texts seen lately, by SHA-256 of the text. A system
 * prompt or a few-shot preamble comes back on every call of a route, and
 * tokenizing costs ~55 µs per KiB where hashing costs ~2 µs: a repeated text
 * is counted once. Only a digest is kept, never the text; below
 * MEMO_MIN_CHARS a text counts about as fast as it hashes. Bounded: when full
 * it starts over (~0.6 MB at most).
 */
const memo = new Map<string, number>();
const MEMO_MIN_CHARS = 256;
const MEMO_MAX_ENTRIES = 4096;

function countUncached(text: string): number {
  const vocab = o200kVocabulary();
  let total = 0;
  for (const [piece] of text.matchAll(O200K_TOKEN_SPLIT_REGEX)) total += countPieceTokens(vocab, piece);
  return total;
}

/**
 * Prompt tokens a provider will bill for `messages`, as closely as can be known
 * without calling the provider. Exact for OpenAI text-only chats up to the
 * framing approximation above; an upper-leaning estimate for Anthropic.
 */
export function countChatTokens(messages: readonly TokenMessage[], provider: TokenProvider): number {
  let framed = OPENAI_REPLY_PRIMING;
  for (const message of messages) {
    framed += OPENAI_TOKENS_PER_MESSAGE + countTextTokens(message.role) + countTextTokens(message.content);
  }
  switch (provider) {
    case 'openai':
    case 'azure':
    case 'openai-compatible':
      return framed;
    case 'anthropic':
      return Math.ceil(framed * ANTHROPIC_FACTOR);
    default: {
      const unknown: never = provider;
      throw new TypeError(`countChatTokens: unknown provider "${String(unknown)}" (expected openai, azure, anthropic or openai-compatible)`);
    }
  }
}
