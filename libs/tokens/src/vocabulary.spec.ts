import bpeRanks from 'gpt-tokenizer/bpeRanks/o200k_base';
import { o200kVocabulary, parseTiktoken } from './vocabulary';

const bytesOf = (value: string | number[]) => (typeof value === 'string' ? Buffer.from(value, 'utf8') : Uint8Array.from(value));

describe('o200kVocabulary (read from the .tiktoken file)', () => {
  it('finds every one of gpt-tokenizer\'s 200 k tokens by its bytes, at gpt-tokenizer\'s rank', () => {
    const vocab = o200kVocabulary();
    const wrong: number[] = [];
    bpeRanks.forEach((value, rank) => {
      const bytes = bytesOf(value);
      if (vocab.tokenOfBytes(bytes, 0, bytes.length) !== rank) wrong.push(rank);
    });
    expect(bpeRanks.length).toBeGreaterThan(199_000);
    expect(wrong).toEqual([]);
  });

  it('merges two tokens into the token their bytes form, and finds none where there is none', () => {
    const vocab = o200kVocabulary();
    const rank = (text: string) => vocab.tokenOfBytes(Buffer.from(text), 0, Buffer.byteLength(text));
    expect(vocab.mergedToken(rank('hel'), rank('lo'))).toBe(rank('hello'));
    expect(rank('hello')).toBeGreaterThanOrEqual(0);
    expect(vocab.mergedToken(rank('zq'), rank('xj'))).toBe(-1);
    expect(rank('zqxj')).toBe(-1);
    // Bytes inside a larger buffer are looked up by range, not from its start.
    expect(vocab.tokenOfBytes(Buffer.from('xxhelloxx'), 2, 7)).toBe(rank('hello'));
  });

  it('has a one-byte token for every byte and the two-byte table agrees with lookups', () => {
    const vocab = o200kVocabulary();
    for (let b = 0; b < 256; b++) expect(vocab.tokenOfBytes(Uint8Array.of(b), 0, 1)).toBe(vocab.tokenOfByte[b]);
    for (const pair of [0x6869, 0x2020, 0xc3a9, 0xffff]) {
      expect(vocab.tokenOfBytePair[pair]).toBe(vocab.tokenOfBytes(Uint8Array.of(pair >> 8, pair & 0xff), 0, 2));
    }
  });
});

describe('parseTiktoken', () => {
  it('reads base64 bytes per rank', () => {
    const { bytes, start } = parseTiktoken('IQ== 0\naGk= 1\n');
    expect(Array.from(start)).toEqual([0, 1, 3]);
    expect(Buffer.from(bytes).toString()).toBe('!hi');
  });

  it('names the line that is out of order or malformed', () => {
    expect(() => parseTiktoken('IQ== 0\naGk= 2\n')).toThrow(/line 2 is not "<base64> 1"/);
    expect(() => parseTiktoken('IQ==\n')).toThrow(/line 1 is not "<base64> 0"/);
  });
});
