import { readFileSync } from 'node:fs';

/**
 * The o200k_base vocabulary in the shapes our merge loop needs: the token a
 * run of bytes is, a byte to its token, and a pair of tokens to the token
 * their concatenated bytes form (the BPE merge).
 *
 * Every token is kept as bytes, not as a string: one buffer of all 200 k
 * tokens' bytes (~1.5 MB), their offsets, and an open-addressing table from
 * bytes to rank. gpt-tokenizer's ranks module is a 2.4 MB array literal of
 * strings: requiring it cost the router ~47 MB of RSS (17 MB of strings on the
 * heap, a Map of them, and what V8's parse of the literal leaves in malloc)
 * and 0.5 s at start. This reads the same vocabulary from the package's
 * `.tiktoken` file (base64 bytes and rank per line, OpenAI's format).
 */
export interface Vocabulary {
  /** The token `bytes[start, end)` are, or -1 if they are none (most words are one). */
  tokenOfBytes(bytes: Uint8Array, start: number, end: number): number;
  /** The single-byte token for each byte value. */
  readonly tokenOfByte: Int32Array;
  /** The two-byte token at `(first << 8) | second`, or -1: a merge's first round without hashing. */
  readonly tokenOfBytePair: Int32Array;
  /** The token whose bytes are `a`'s followed by `b`'s, or -1 if there is none. */
  mergedToken(a: number, b: number): number;
}

/** The vocabulary as OpenAI publishes it, shipped inside gpt-tokenizer (which the tests compare against). */
const O200K_TIKTOKEN_FILE = 'gpt-tokenizer/data/o200k_base.tiktoken';

/**
 * Capacity of the pair cache (open addressing, power of two). A pair is at
 * most one entry, so once it is half full it is cleared rather than grown:
 * memory stays at 3 × 4 B × 2^16 = 768 KiB however hostile the input. At 2^20
 * slots (12 MiB) it counted varied text no faster, and the process grew 11–12
 * MB more as that text touched its pages (`npm run bench -- tokens`, its first
 * line, two interleaved runs of each: 93–110 against 91–97 µs/KiB, RSS +25.5–27.3
 * against +14.1–15.1 MB).
 */
const PAIR_CACHE_SLOTS = 1 << 16;

// Bound once: a global lookup per call is slow where globals are intercepted
// (a vm context, as under jest), and this runs several times per byte.
const imul = Math.imul;

/** FNV-1a over `bytes[start, end)`. */
function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = imul(h ^ bytes[i], 0x01000193);
  return h;
}

/** Every token's bytes, back to back, with `start[rank]` to `start[rank + 1]` the bytes of `rank`. */
interface TokenBytes {
  readonly bytes: Uint8Array;
  readonly start: Uint32Array;
}

/** Parses a `.tiktoken` file: one `base64 rank` line per token, ranks 0, 1, 2, … in order. */
export function parseTiktoken(text: string): TokenBytes {
  let lines = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lines++;
  if (!text.endsWith('\n')) lines++;
  // Decoded base64 is at most 3/4 of its characters, so the file's length bounds every token's bytes together.
  const bytes = Buffer.allocUnsafe(text.length);
  const start = new Uint32Array(lines + 1);
  let size = 0;
  let rank = 0;
  for (let line = 0; line < text.length; ) {
    let eol = text.indexOf('\n', line);
    if (eol < 0) eol = text.length;
    if (eol > line) {
      const space = text.indexOf(' ', line);
      if (space < 0 || space > eol || Number(text.slice(space + 1, eol)) !== rank) {
        throw new Error(`${O200K_TIKTOKEN_FILE}: line ${rank + 1} is not "<base64> ${rank}"`);
      }
      start[rank] = size;
      size += bytes.write(text.slice(line, space), size, 'base64');
      rank++;
    }
    line = eol + 1;
  }
  start[rank] = size;
  // A copy of just the bytes, so the file-sized scratch is collected.
  return { bytes: Uint8Array.prototype.slice.call(bytes, 0, size), start: start.slice(0, rank + 1) };
}

/** Open-addressing table from a token's bytes to its rank, sized to a power of two at most half full. */
function indexTokens({ bytes, start }: TokenBytes): (key: Uint8Array, from: number, to: number) => number {
  const count = start.length - 1;
  let slots = 1;
  while (slots < count * 2) slots <<= 1;
  const mask = slots - 1;
  const rankPlusOne = new Int32Array(slots); // 0 marks an empty slot
  for (let rank = 0; rank < count; rank++) {
    let slot = hashBytes(bytes, start[rank], start[rank + 1]) & mask;
    while (rankPlusOne[slot] !== 0) slot = (slot + 1) & mask;
    rankPlusOne[slot] = rank + 1;
  }
  return (key, from, to) => {
    const length = to - from;
    for (let slot = hashBytes(key, from, to) & mask; ; slot = (slot + 1) & mask) {
      const tagged = rankPlusOne[slot];
      if (tagged === 0) return -1;
      const at = start[tagged - 1];
      if (start[tagged] - at !== length) continue;
      let i = 0;
      while (i < length && bytes[at + i] === key[from + i]) i++;
      if (i === length) return tagged - 1;
    }
  };
}

function createVocabulary(tokens: TokenBytes): Vocabulary {
  const { bytes, start } = tokens;
  const rankOf = indexTokens(tokens);

  const one = new Uint8Array(2);
  const tokenOfByte = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    one[0] = b;
    const rank = rankOf(one, 0, 1);
    if (rank < 0) throw new Error(`o200k_base has no token for byte ${b}`);
    tokenOfByte[b] = rank;
  }
  const tokenOfBytePair = new Int32Array(1 << 16);
  for (let pair = 0; pair < 1 << 16; pair++) {
    one[0] = pair >>> 8;
    one[1] = pair & 0xff;
    tokenOfBytePair[pair] = rankOf(one, 0, 2);
  }

  // Where a pair's bytes are put together to be looked up; no token is anywhere near this long.
  let joined = new Uint8Array(256);
  const mergeLookup = (a: number, b: number): number => {
    const aStart = start[a];
    const aLength = start[a + 1] - aStart;
    const bStart = start[b];
    const length = aLength + start[b + 1] - bStart;
    if (length > joined.length) joined = new Uint8Array(length * 2);
    joined.set(bytes.subarray(aStart, aStart + aLength), 0);
    joined.set(bytes.subarray(bStart, start[b + 1]), aLength);
    return rankOf(joined, 0, length);
  };

  const mask = PAIR_CACHE_SLOTS - 1;
  const keyA = new Int32Array(PAIR_CACHE_SLOTS); // token a + 1, so 0 marks an empty slot
  const keyB = new Int32Array(PAIR_CACHE_SLOTS);
  const merged = new Int32Array(PAIR_CACHE_SLOTS);
  let used = 0;
  const slotOf = (a: number, b: number) => (imul(a, 0x9e3779b1) ^ imul(b + 1, 0x85ebca6b)) & mask;

  return {
    tokenOfBytes: rankOf,
    tokenOfByte,
    tokenOfBytePair,
    mergedToken(a, b) {
      const tagged = a + 1;
      let slot = slotOf(a, b);
      for (let seen = keyA[slot]; seen !== 0; seen = keyA[slot]) {
        if (seen === tagged && keyB[slot] === b) return merged[slot];
        slot = (slot + 1) & mask;
      }
      const token = mergeLookup(a, b);
      if (used >= PAIR_CACHE_SLOTS >>> 1) {
        keyA.fill(0);
        used = 0;
        slot = slotOf(a, b);
      }
      keyA[slot] = tagged;
      keyB[slot] = b;
      merged[slot] = token;
      used++;
      return token;
    },
  };
}

let vocabulary: Vocabulary | undefined;

/** The o200k_base vocabulary, read on first use (~0.1 s, ~5 MB plus the pair cache's pages as they are touched) so importing the lib costs nothing. */
export function o200kVocabulary(): Vocabulary {
  vocabulary ??= createVocabulary(parseTiktoken(readFileSync(require.resolve(O200K_TIKTOKEN_FILE), 'latin1')));
  return vocabulary;
}
