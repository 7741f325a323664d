import { countChatTokens } from '@switchyard/tokens';
import { InvalidChatRequestError } from './errors';
import { estimateCost, estimateCostMicros, estimateRequestTokens } from './estimate';
import type { ChatRequest } from './types';

const req: ChatRequest = {
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Name three prime numbers.' },
  ],
  maxTokens: 50,
};

describe('estimateRequestTokens', () => {
  it('does not reject a parameter outside one provider’s range (fitRequest fits it per candidate)', () => {
    expect(() => estimateRequestTokens({ ...req, temperature: 1.5 }, 'anthropic')).not.toThrow();
  });

  it('is the shared tokenizer’s prompt count plus maxTokens', () => {
    const prompt = countChatTokens(req.messages as { role: string; content: string }[], 'openai');
    expect(prompt).toBeGreaterThan(10);
    expect(estimateRequestTokens(req, 'openai')).toEqual({ inputTokens: prompt, outputTokens: 50, totalTokens: prompt + 50 });
  });

  it('leans higher for Anthropic, whose tokenizer is not public', () => {
    expect(estimateRequestTokens(req, 'anthropic').inputTokens).toBeGreaterThan(estimateRequestTokens(req, 'openai').inputTokens);
  });

  it('rejects a bad request naming the field', () => {
    expect(() => estimateRequestTokens({ ...req, maxTokens: 0 }, 'openai')).toThrow('maxTokens: must be a positive integer (got 0)');
  });
});

describe('estimateCost', () => {
  const price = { inputPerMillion: 0.15, outputPerMillion: 0.6 };

  it('prices input and output separately in micro-dollars', () => {
    // 1M input at $0.15 + 1M output at $0.60
    expect(estimateCostMicros({ inputTokens: 1_000_000, outputTokens: 1_000_000 }, price)).toBe(750_000);
    expect(estimateCost({ inputTokens: 1_000_000, outputTokens: 1_000_000 }, price)).toBe(0.75);
  });

  it('rounds each part up to a whole micro-dollar so budgets never under-reserve', () => {
    // 1 token at $0.15/M = 0.15 micro-dollars → 1
    expect(estimateCostMicros({ inputTokens: 1, outputTokens: 0 }, price)).toBe(1);
    expect(estimateCostMicros({ inputTokens: 0, outputTokens: 0 }, price)).toBe(0);
  });

  it('does not drift when summed over many calls (float sum of the same would)', () => {
    let micros = 0;
    let floats = 0;
    for (let i = 0; i < 100_000; i++) {
      micros += estimateCostMicros({ inputTokens: 1000, outputTokens: 100 }, { inputPerMillion: 3, outputPerMillion: 15 });
      floats += 1000 * (3 / 1e6) + 100 * (15 / 1e6);
    }
    expect(micros).toBe(100_000 * 4500);
    expect(floats).not.toBe(450); // the float path drifts; ours is exact
    expect(micros / 1e6).toBe(450);
  });

  it('handles token counts whose product with the price exceeds 2^53', () => {
    expect(estimateCostMicros({ inputTokens: 2 ** 40, outputTokens: 0 }, { inputPerMillion: 75, outputPerMillion: 0 })).toBe(Math.ceil((2 ** 40 * 75)));
  });

  it.each([
    [{ inputTokens: -1, outputTokens: 0 }, price, 'usage.inputTokens'],
    [{ inputTokens: 1, outputTokens: 1.5 }, price, 'usage.outputTokens'],
    [{ inputTokens: 1, outputTokens: 1 }, { inputPerMillion: -1, outputPerMillion: 1 }, 'price.inputPerMillion'],
    [{ inputTokens: 1, outputTokens: 1 }, { inputPerMillion: 1, outputPerMillion: Number.NaN }, 'price.outputPerMillion'],
  ])('rejects bad input naming the field (%#)', (usage, p, field) => {
    try {
      estimateCost(usage, p);
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidChatRequestError);
      expect((err as InvalidChatRequestError).field).toBe(field);
    }
  });
});
