/** A seeded PRNG returning floats in [0, 1): mulberry32, tiny and fast, good enough for fault dice. */
export type Random = () => number;

export function createRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over UTF-16 code units: a stable 32-bit hash for seeding and prompt-derived content. */
export function hashString(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** One independent stream per (seed, deployment, purpose), so other deployments' traffic cannot shift a deployment's dice. */
export function streamSeed(seed: number, ...parts: string[]): number {
  return hashString(parts.join('\u0000'), hashString(String(seed)));
}
