import bpeRanks from 'gpt-tokenizer/bpeRanks/o200k_base';

/**
 * The o200k_base vocabulary in the shapes our merge loop needs: a whole piece
 * to its token, a byte to its token, and a pair of tokens to the token their
 * concatenated bytes form (the BPE merge). gpt-tokenizer answers the last one
 * by decoding the pair's bytes with a TextDecoder on every lookup, which is
 * what made its merge cost ~1 µs per byte even before the quadratic scan;
 * here it is an integer-keyed cache in front of one string lookup.
 */
export interface Vocabulary {
  /** The token a whole piece of text is, if it is one (most words are). */
  tokenOfText(text: string): number | undefined;
  /** The single-byte token for each byte value. */
  readonly tokenOfByte: Int32Array;
  /** The two-byte token at `(first << 8) | second`, or -1: a merge's first round without hashing. */
  readonly tokenOfBytePair: Int32Array;
  /** The token whose bytes are `a`'s followed by `b`'s, or -1 if there is none. */
  mergedToken(a: number, b: number): number;
}

/**
 * Capacity of the pair cache (open addressing, power of two). A pair is at
 * most one entry, so once it is half full it is cleared rather than grown:
 * memory stays at 3 × 4 B × 2^20 = 12 MiB however hostile the input.
 */
const PAIR_CACHE_SLOTS = 1 << 20;

// Bound once: a global lookup per call is slow where globals are intercepted
// (a vm context, as under jest), and this runs several times per byte.
const imul = Math.imul;

function latin1(bytes: readonly number[] | Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function createVocabulary(): Vocabulary {
  const rankOfText = new Map<string, number>();
  // The ~1.5 k tokens that are not valid UTF-8 on their own (parts of a
  // multi-byte character), keyed by their bytes as a latin1 string.
  const rankOfRawBytes = new Map<string, number>();
  bpeRanks.forEach((value, rank) => {
    if (typeof value === 'string') rankOfText.set(value, rank);
    else rankOfRawBytes.set(latin1(value), rank);
  });
  // ignoreBOM: a leading U+FEFF is part of a token's bytes (o200k has several), not a marker to strip.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const bytesOf = (rank: number): string => {
    const value = bpeRanks[rank]!;
    return typeof value === 'string' ? Buffer.from(value, 'utf8').toString('latin1') : latin1(value);
  };
  const rankOfBytes = (bytes: string): number => {
    const raw = rankOfRawBytes.get(bytes);
    if (raw !== undefined) return raw;
    let text: string;
    try {
      text = utf8.decode(Buffer.from(bytes, 'latin1'));
    } catch {
      return -1; // not UTF-8 and not a raw-byte token: no such token
    }
    return rankOfText.get(text) ?? -1;
  };

  const tokenOfByte = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    const rank = rankOfBytes(String.fromCharCode(b));
    if (rank < 0) throw new Error(`o200k_base has no token for byte ${b}`);
    tokenOfByte[b] = rank;
  }

  const tokenOfBytePair = new Int32Array(1 << 16);
  for (let pair = 0; pair < 1 << 16; pair++) tokenOfBytePair[pair] = rankOfBytes(String.fromCharCode(pair >>> 8, pair & 0xff));

  const mask = PAIR_CACHE_SLOTS - 1;
  const keyA = new Int32Array(PAIR_CACHE_SLOTS); // token a + 1, so 0 marks an empty slot
  const keyB = new Int32Array(PAIR_CACHE_SLOTS);
  const merged = new Int32Array(PAIR_CACHE_SLOTS);
  let used = 0;
  const slotOf = (a: number, b: number) => (imul(a, 0x9e3779b1) ^ imul(b + 1, 0x85ebca6b)) & mask;

  return {
    tokenOfText: (text) => rankOfText.get(text),
    tokenOfByte,
    tokenOfBytePair,
    mergedToken(a, b) {
      const tagged = a + 1;
      let slot = slotOf(a, b);
      for (let seen = keyA[slot]; seen !== 0; seen = keyA[slot]) {
        if (seen === tagged && keyB[slot] === b) return merged[slot];
        slot = (slot + 1) & mask;
      }
      const va = bpeRanks[a];
      const vb = bpeRanks[b];
      const token = typeof va === 'string' && typeof vb === 'string' ? (rankOfText.get(va + vb) ?? -1) : rankOfBytes(bytesOf(a) + bytesOf(b));
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

/** The o200k_base vocabulary, built on first use (~0.1 s, ~25 MiB) so importing the lib costs nothing. */
export function o200kVocabulary(): Vocabulary {
  vocabulary ??= createVocabulary();
  return vocabulary;
}
