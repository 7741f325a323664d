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
    const estimate = estimateCall(() => chat, [cheap, dear]);
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

  it('estimates each candidate on the request it receives, tool schemas and images included, so reservations stay upper bounds', () => {
    const oai = candidate('oai');
    const ant = candidate('ant', { provider: 'anthropic' });
    const withTools = {
      ...chat,
      tools: [{ name: 'get_weather', description: 'Current weather for a city', parameters: { type: 'object', properties: { city: { type: 'string', description: 'the city' } }, required: ['city'] } }],
      messages: [
        ...chat.messages,
        { role: 'assistant' as const, content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool' as const, toolCallId: 'call_1', content: '{"temp_c":18}' },
        { role: 'user' as const, content: [{ type: 'image' as const, source: { kind: 'url' as const, url: 'https://example.com/a.png' } }] },
      ],
    };
    const clamped = { ...withTools, maxTokens: 50 };
    const estimate = estimateCall((c) => (c.name === 'ant' ? clamped : withTools), [oai, ant]);
    expect(estimate.inputTokens.get('oai')).toBe(estimateRequestTokens(withTools, 'openai').inputTokens);
    expect(estimate.inputTokens.get('ant')).toBe(estimateRequestTokens(clamped, 'anthropic').inputTokens);
    // Tools, tool turns and the image add to the text-only estimate (a URL image at the provider's maximum).
    expect(estimate.inputTokens.get('oai')!).toBeGreaterThan(estimateRequestTokens(chat, 'openai').inputTokens + 500);
    expect(estimate.worstCaseMicros.get('ant')).toBe(
      costMicros(ant, { inputTokens: estimate.inputTokens.get('ant')!, outputTokens: estimateRequestTokens(clamped, 'anthropic').outputTokens }),
    );
  });
});
