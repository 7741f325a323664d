import { countTextTokens } from '@switchyard/tokens';
import { buildReply, createContentCache, REPLY_PREFIX, REPLY_WORDS } from './content';

describe('reply pieces', () => {
  it('are each exactly one o200k token, and stay separate tokens when joined', () => {
    for (const piece of [...REPLY_PREFIX, ...REPLY_WORDS, '.']) expect([piece, countTextTokens(piece)]).toEqual([piece, 1]);
    for (let hash = 1; hash < 200; hash += 7) {
      const r = buildReply(hash * 2654435761, 8, 48, null, []);
      expect(r.tokens).toBe(r.pieces.length);
    }
  });
});

describe('buildReply', () => {
  it('is deterministic for a prompt hash and bounded by the configured length', () => {
    const a = buildReply(123456, 8, 48, null, []);
    expect(buildReply(123456, 8, 48, null, [])).toEqual(a);
    expect(a.text.startsWith('Simulated answer')).toBe(true);
    expect(a.tokens).toBeGreaterThanOrEqual(8);
    expect(a.tokens).toBeLessThanOrEqual(48);
    expect(a.finish).toBe('stop');
    expect(buildReply(654321, 8, 48, null, []).text).not.toBe(a.text);
  });

  it('cuts at max_tokens exactly and says so', () => {
    const r = buildReply(99, 20, 20, 5, []);
    expect(r.tokens).toBe(5);
    expect(r.pieces).toHaveLength(5);
    expect(r.finish).toBe('length');
  });

  it('stops before the earliest stop sequence', () => {
    const full = buildReply(99, 20, 20, null, []);
    const r = buildReply(99, 20, 20, null, [' answer']);
    expect(r.text).toBe('Simulated');
    expect(r.finish).toBe('stop_sequence');
    expect(r.stopSequence).toBe(' answer');
    expect(full.text.startsWith(r.text)).toBe(true);
  });
});

describe('createContentCache', () => {
  it('counts chat tokens per provider and derives the same hash for the same conversation', () => {
    const cache = createContentCache();
    const messages = [{ role: 'user', content: 'hello world' }];
    const openai = cache.promptInfo(messages, 'openai');
    const anthropic = cache.promptInfo(messages, 'anthropic');
    expect(openai.tokens).toBe(3 + 1 + 2 + 3); // framing + "user" + "hello world" + priming
    expect(anthropic.tokens).toBe(Math.ceil(openai.tokens * 1.1));
    expect(anthropic.hash).toBe(openai.hash);
    expect(cache.promptInfo([{ role: 'user', content: 'hello world!' }], 'openai').hash).not.toBe(openai.hash);
  });
});
