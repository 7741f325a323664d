import { countChatTokens, countTextTokens } from './count';
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
