import { estimateRequestTokens } from '@switchyard/providers';
import { costMicros, countedTokens, estimateCall, reservedTokens, reserveMicros } from './token-accounting';
import { candidate } from './test-fixtures';

const chat = { messages: [{ role: 'user' as const, content: 'How many tokens does this prompt take? '.repeat(10) }], maxTokens: 100 };

describe('token accounting', () => {
  it('reserves the prompt estimate plus max_tokens at Acquire', () => {
    expect(reservedTokens(120, 100)).toBe(220);
  });

  it('settles OpenAI-style providers to at least the reservation (they charge max_tokens on admit), Anthropic to actual use', () => {
    const usage = { inputTokens: 120, outputTokens: 10 };
    expect(countedTokens('openai', 220, usage)).toBe(220);
    expect(countedTokens('azure', 220, usage)).toBe(220);
    expect(countedTokens('openai', 220, { inputTokens: 120, outputTokens: 300 })).toBe(420);
    expect(countedTokens('anthropic', 220, usage)).toBe(130);
    // A failed attempt with no usage: OpenAI still counted the reservation, Anthropic nothing.
    expect(countedTokens('openai', 220, undefined)).toBe(220);
    expect(countedTokens('anthropic', 220, undefined)).toBe(0);
  });

  it('reserves budget at the dearest candidate the call may use, not at one it will skip', () => {
    const cheap = candidate('cheap', { price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 } });
    const dear = candidate('dear', { price: { inputPerMillionUsd: 100, outputPerMillionUsd: 100 } });
    const estimate = estimateCall(chat, [cheap, dear]);
    const tokens = estimateRequestTokens(chat, 'openai');
    expect(estimate.inputTokens.get('cheap')).toBe(tokens.inputTokens);
    expect(reserveMicros(estimate, [cheap, dear])).toBe(estimate.worstCaseMicros.get('dear'));
    expect(reserveMicros(estimate, [cheap])).toBe(estimate.worstCaseMicros.get('cheap'));
    expect(reserveMicros(estimate, [cheap])).toBeLessThan(reserveMicros(estimate, [cheap, dear]));
    expect(reserveMicros(estimate, [])).toBe(0);
  });

  it('charges the actual usage at the serving candidate\'s price', () => {
    const c = candidate('c', { price: { inputPerMillionUsd: 2, outputPerMillionUsd: 10 } });
    expect(costMicros(c, { inputTokens: 1_000_000, outputTokens: 100_000 })).toBe(3_000_000);
  });
});
