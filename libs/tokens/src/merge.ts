import type { Vocabulary } from './vocabulary';

/**
 * Heap keys pack (rank, position) into one double: rank × 2^23 + position.
 * Ranks are < 2^18 and a merged span is < 2^23 bytes, so the key is exact and
 * ordering by key is ordering by rank, then leftmost position: the order in
 * which tiktoken (and gpt-tokenizer) apply merges. The same rule therefore
 * gives the same tokens, not an approximation of them.
 */
const POSITION_RANGE = 1 << 23;

/** Largest byte span {@link countMergedTokens} accepts (the key packing above). */
export const MAX_MERGE_BYTES = POSITION_RANGE - 1;

// Work arrays reused across calls (sized to the largest span seen) so a
// prompt of many multi-token words does not allocate per word.
let capacity = 0;
let nextStart = new Int32Array(0);
let prevStart = new Int32Array(0);
let tokenAt = new Int32Array(0);
let pairRank = new Int32Array(0); // rank of the merge of the part at i with the next; -1 none
let heap = new Float64Array(0);

function reserve(length: number): void {
  if (length <= capacity) return;
  capacity = Math.max(length, capacity * 2, 256);
  nextStart = new Int32Array(capacity);
  prevStart = new Int32Array(capacity);
  tokenAt = new Int32Array(capacity);
  pairRank = new Int32Array(capacity);
  heap = new Float64Array(capacity * 3); // ≤ 1 initial + 2 per merge entries
}

/** Adds `key` to the min-heap `h[0, size)`; returns the new size. */
function heapPush(h: Float64Array, size: number, key: number): number {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent] <= key) break;
    h[i] = h[parent];
    i = parent;
  }
  h[i] = key;
  return size + 1;
}

/**
 * Exact o200k_base token count of `bytes[start, end)` treated as one
 * pre-tokenized piece: byte-level BPE, always merging the lowest-ranked
 * adjacent pair (leftmost on ties). Time O(n log n) in the span: a binary heap
 * with lazy deletion replaces the library's rescan of every pair per merge
 * (O(n²)), and a linked list replaces its array splices.
 */
export function countMergedTokens(vocab: Vocabulary, bytes: Uint8Array, start: number, end: number): number {
  const n = end - start;
  if (n <= 1) return n;
  if (n > MAX_MERGE_BYTES) throw new RangeError(`countMergedTokens: span of ${n} bytes exceeds ${MAX_MERGE_BYTES}`);
  reserve(n);
  const next = nextStart;
  const prev = prevStart;
  const token = tokenAt;
  const rank = pairRank;
  const h = heap;
  let size = 0;

  for (let i = 0; i < n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
    token[i] = vocab.tokenOfByte[bytes[start + i]];
  }
  const pairs = vocab.tokenOfBytePair;
  for (let i = 0; i < n - 1; i++) {
    const r = pairs[(bytes[start + i] << 8) | bytes[start + i + 1]];
    rank[i] = r;
    if (r >= 0) size = heapPush(h, size, r * POSITION_RANGE + i);
  }
  rank[n - 1] = -1;

  let count = n;
  while (size > 0) {
    const top = h[0];
    const last = h[--size];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && h[child + 1] < h[child]) child++;
      if (h[child] >= last) break;
      h[i] = h[child];
      i = child;
    }
    h[i] = last;

    const r = (top / POSITION_RANGE) | 0; // < 2^18, so | 0 floors it (no global Math lookup in the loop)
    const at = top - r * POSITION_RANGE;
    // Stale entry: the part was merged away or its right neighbour changed.
    if (rank[at] !== r) continue;
    const absorbed = next[at];
    const after = next[absorbed];
    next[at] = after;
    if (after < n) prev[after] = at;
    rank[absorbed] = -2;
    token[at] = r;
    count--;
    const right = after < n ? vocab.mergedToken(r, token[after]) : -1;
    rank[at] = right;
    if (right >= 0) size = heapPush(h, size, right * POSITION_RANGE + at);
    const before = prev[at];
    if (before >= 0) {
      const left = vocab.mergedToken(token[before], r);
      rank[before] = left;
      if (left >= 0) size = heapPush(h, size, left * POSITION_RANGE + before);
    }
  }
  return count;
}
