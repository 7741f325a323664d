import { countTokens as libraryCount } from 'gpt-tokenizer/encoding/o200k_base';
import { countChatTokens, countTextTokens, LONG_PIECE_CHUNK_BYTES, MAX_CUT_SURPLUS, TOKENS_PER_CUT } from './count';
import { countMergedTokens } from './merge';
import { o200kVocabulary } from './vocabulary';
import { makeSamplePrompts, measureTokenizerCost } from './bench';

describe('countTextTokens', () => {
  it('counts o200k_base tokens', () => {
    expect(countTextTokens('')).toBe(0);
    expect(countTextTokens('hello world')).toBe(2);
    // Reference counts from tiktoken's o200k_base.
    expect(countTextTokens('The quick brown fox jumps over the lazy dog.')).toBe(10);
    expect(countTextTokens('Hello, world!')).toBe(4);
  });

  it('counts special-token strings in user text instead of throwing', () => {
    expect(countTextTokens('a <|endoftext|> b')).toBeGreaterThan(3);
  });

  it('treats a leading U+FEFF as bytes of a token, never strips it as a byte-order mark', () => {
    // o200k has BOM-prefixed tokens (stored as raw bytes): EF BB BF alone, and EF BB BF "using".
    expect(countTextTokens('\uFEFF')).toBe(1);
    expect(countTextTokens('\uFEFFusing')).toBe(1);
    // No token is BOM + "hello": a decoder that strips the BOM would look the
    // pair up as "h" and count 1, under the true 2. (gpt-tokenizer does, and
    // counts "\uFEFF" as 2, so these cases are checked here, not against it.)
    expect(countTextTokens('\uFEFFhello')).toBe(2);
  });

  it('counts a repeated long text (a system prompt on every call) as the library does, every time, and never mixes up two texts', () => {
    const systemPrompt = 'You are a careful assistant for the billing team. Answer in two sentences, cite the invoice id. '.repeat(12);
    const expected = libraryCount(systemPrompt);
    for (let i = 0; i < 3; i++) expect(countTextTokens(systemPrompt.slice(0) + '')).toBe(expected);
    // One character apart, same length: its own count, not the memo's.
    const other = `${systemPrompt.slice(0, -1)}!`;
    expect(countTextTokens(other)).toBe(libraryCount(other));
    expect(countTextTokens(systemPrompt + ' Extra.')).toBe(libraryCount(systemPrompt + ' Extra.'));
    // More distinct long texts than the memo holds (it starts over when full): each still counts right.
    const texts = Array.from({ length: 4200 }, (_, i) => `${i} ${systemPrompt}`);
    const counts = texts.map((t) => countTextTokens(t));
    expect(countTextTokens(texts[0]!)).toBe(counts[0]);
    for (const i of [0, 2048, 4095, 4096, 4199]) expect(counts[i]).toBe(libraryCount(texts[i]!));
  });
});

/** gpt-tokenizer's own count (quadratic on long pieces): the reference, on inputs small enough for it. */
const exactCount = (text: string) => libraryCount(text, { disallowedSpecial: new Set<string>() });

function seeded(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

const chars = (s: string) => [...s];
/**
 * Alphabets whose text pre-tokenizes into one long piece (no whitespace, one
 * character class): what DNA, a run of one letter, base64-ish letters, spaces,
 * symbols, CJK, emoji, scripts with combining marks look like to the tokenizer.
 */
const PATHOLOGICAL: Record<string, string[]> = {
  dna: chars('acgt'),
  'dna-upper': chars('ACGT'),
  'one-letter': chars('a'),
  spaces: chars(' '),
  newlines: chars('\n'),
  symbols: chars('{}[]();=+-*&^%$#@!~'),
  letters: chars('abcdefghijklmnopqrstuvwxyz'),
  'mixed-case': chars('aAbBzZ'),
  hex: chars('abcdef'),
  cjk: Array.from({ length: 300 }, (_, i) => String.fromCharCode(0x4e00 + i * 7)),
  emoji: chars('😀🎉🚀👍🏽'),
  cyrillic: chars('абвгдежзийклмнопрст'),
  arabic: chars('ابتثجحخدذرزسشصضطظعغفقكلمنهوي'),
  combining: chars('a\u0301\u0300\u0308'),
  'word-parts': ['the', 'ing', 'tion', 'er', 'an', 'st', 'Th', 'ER'],
};

function textFrom(alphabet: readonly string[], length: number, random: () => number): string {
  let text = '';
  while (text.length < length) text += alphabet[Math.floor(random() * alphabet.length)];
  return text;
}

describe('countTextTokens on text of ordinary pieces', () => {
  const PARTS = ['the', ' gateway', ' Retries', ' naïve', ' café', ' →', ' 42', '1234567', '{"a":1}', '\n\n', '  ', '\t', 'Über', ' 中文文本，', ' кошка', "'s", " don't", ' <|endoftext|>', ' 😀', ' x\u0301', '...', '\r\n', ' https://example.com/a?b=c'];

  it('equals gpt-tokenizer exactly whenever no piece exceeds the chunk size (400 seeded texts)', () => {
    const random = seeded(20261206);
    for (let i = 0; i < 400; i++) {
      const text = textFrom(PARTS, Math.floor(random() * 3000), random);
      expect([i, countTextTokens(text)]).toEqual([i, exactCount(text)]);
    }
  });

  it('equals gpt-tokenizer exactly on long whitespace-free pieces up to the chunk size', () => {
    const random = seeded(7);
    for (const [kind, alphabet] of Object.entries(PATHOLOGICAL)) {
      for (let i = 0; i < 10; i++) {
        let text = textFrom(alphabet, 1 + Math.floor(random() * 600), random);
        while (Buffer.byteLength(text) > LONG_PIECE_CHUNK_BYTES) text = text.slice(0, -1);
        expect([kind, text.length, countTextTokens(text)]).toEqual([kind, text.length, exactCount(text)]);
      }
    }
  });
});

describe('countMergedTokens (the O(n log n) merge)', () => {
  it('gives the same count as gpt-tokenizer\'s quadratic merge on whole pieces of up to 4 KiB', () => {
    const vocab = o200kVocabulary();
    const random = seeded(99);
    for (const [kind, alphabet] of Object.entries(PATHOLOGICAL)) {
      for (let i = 0; i < 3; i++) {
        const text = textFrom(alphabet, 200 + Math.floor(random() * 1200), random);
        const bytes = Buffer.from(text, 'utf8');
        expect([kind, countMergedTokens(vocab, bytes, 0, bytes.length)]).toEqual([kind, exactCount(text)]);
      }
    }
  });
});

describe('one chunk boundary (the assumption TOKENS_PER_CUT rests on)', () => {
  it('changes a piece\'s count by between -TOKENS_PER_CUT and +MAX_CUT_SURPLUS (500 seeded cuts per alphabet)', () => {
    const vocab = o200kVocabulary();
    const random = seeded(31337);
    for (const [kind, alphabet] of Object.entries(PATHOLOGICAL)) {
      let low = Infinity;
      let high = -Infinity;
      for (let i = 0; i < 500; i++) {
        const bytes = Buffer.from(textFrom(alphabet, 20 + Math.floor(random() * 700), random), 'utf8');
        let cut = 1 + Math.floor(random() * (bytes.length - 1));
        while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--; // between characters, as countTextTokens cuts
        if (cut === 0) continue;
        const split = countMergedTokens(vocab, bytes, 0, cut) + countMergedTokens(vocab, bytes, cut, bytes.length);
        const delta = split - countMergedTokens(vocab, bytes, 0, bytes.length);
        low = Math.min(low, delta);
        high = Math.max(high, delta);
      }
      expect([kind, low >= -TOKENS_PER_CUT, high <= MAX_CUT_SURPLUS]).toEqual([kind, true, true]);
    }
  }, 120_000);
});

describe('countTextTokens on pieces longer than the chunk size', () => {
  /** The documented bound: never under, at most TOKENS_PER_CUT + MAX_CUT_SURPLUS over per chunk boundary (≤ 5 per KiB). */
  const maxOver = (text: string) => (TOKENS_PER_CUT + MAX_CUT_SURPLUS) * Math.ceil(Buffer.byteLength(text) / (LONG_PIECE_CHUNK_BYTES - 3));

  it('is an upper bound within 5 tokens per KiB of the exact count (seeded, every pathological alphabet)', () => {
    const random = seeded(424242);
    for (const [kind, alphabet] of Object.entries(PATHOLOGICAL)) {
      for (let i = 0; i < 4; i++) {
        const text = textFrom(alphabet, 1100 + Math.floor(random() * 2000), random);
        const exact = exactCount(text);
        const estimate = countTextTokens(text);
        expect([kind, i, estimate >= exact]).toEqual([kind, i, true]);
        expect([kind, i, estimate - exact <= maxOver(text)]).toEqual([kind, i, true]);
      }
    }
  }, 120_000);

  it('keeps the bound on a long piece inside ordinary text (a pasted blob between sentences)', () => {
    const random = seeded(5);
    for (let i = 0; i < 6; i++) {
      const blob = textFrom(PATHOLOGICAL.dna!, 3000 + Math.floor(random() * 2000), random);
      const text = `Please align this sequence:\n${blob}\nand say where it starts.`;
      const exact = exactCount(text);
      const estimate = countTextTokens(text);
      expect(estimate).toBeGreaterThanOrEqual(exact);
      expect(estimate - exact).toBeLessThanOrEqual(maxOver(blob));
    }
  });

  it('keeps the bound on a 200,000-character whitespace-free prompt (checked against the unchunked merge)', () => {
    const random = seeded(1);
    const vocab = o200kVocabulary();
    const text = textFrom(PATHOLOGICAL.dna!, 200_000, random);
    const bytes = Buffer.from(text, 'utf8');
    const whole = countMergedTokens(vocab, bytes, 0, bytes.length);
    const estimate = countTextTokens(text);
    expect(estimate).toBeGreaterThanOrEqual(whole);
    expect(estimate - whole).toBeLessThanOrEqual(maxOver(text));
  }, 120_000);
});

describe('countChatTokens', () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'hello world' },
  ];

  it('adds 3 tokens per message and 3 for reply priming for OpenAI-shaped providers', () => {
    const content = countTextTokens('You are terse.') + countTextTokens('hello world');
    const roles = countTextTokens('system') + countTextTokens('user');
    const expected = content + roles + 2 * 3 + 3;
    expect(countChatTokens(messages, 'openai')).toBe(expected);
    expect(countChatTokens(messages, 'azure')).toBe(expected);
    expect(countChatTokens(messages, 'openai-compatible')).toBe(expected);
  });

  it('estimates Anthropic as the framed count plus 10 %, rounded up', () => {
    const openai = countChatTokens(messages, 'openai');
    expect(countChatTokens(messages, 'anthropic')).toBe(Math.ceil(openai * 1.1));
    expect(countChatTokens(messages, 'anthropic')).toBeGreaterThan(openai);
  });

  it('charges only the reply priming for an empty conversation', () => {
    expect(countChatTokens([], 'openai')).toBe(3);
  });

  it('names the bad provider', () => {
    expect(() => countChatTokens(messages, 'gemini' as never)).toThrow(/unknown provider "gemini"/);
  });
});

describe('measureTokenizerCost', () => {
  it('produces distinct ~1 KiB prompts and a positive per-KiB cost', () => {
    const prompts = makeSamplePrompts(5);
    expect(new Set(prompts).size).toBe(5);
    for (const p of prompts) expect(Buffer.byteLength(p)).toBeGreaterThanOrEqual(1024);
    const r = measureTokenizerCost(20);
    expect(r.microsPerKiB).toBeGreaterThan(0);
    expect(r.tokensPerKiB).toBeGreaterThan(100);
  });
});
