import { estimateRequestTokens, type ChatMessage, type ChatRequest } from '@switchyard/providers';
import { truncateToWindow } from './truncate-context';

const words = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');

/** system, then 5 exchanges; exchange 2 is a tool call with two results. */
function conversation(): ChatMessage[] {
  return [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: words(200, 'a') },
    { role: 'assistant', content: words(200, 'b') },
    { role: 'user', content: words(200, 'c') },
    { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'f', arguments: '{}' }, { id: 'c2', name: 'f', arguments: '{}' }] },
    { role: 'tool', toolCallId: 'c1', content: words(200, 'd') },
    { role: 'tool', toolCallId: 'c2', content: words(200, 'e') },
    { role: 'assistant', content: words(50, 'f') },
    { role: 'user', content: words(200, 'g') },
    { role: 'assistant', content: words(200, 'h') },
    { role: 'user', content: 'latest question' },
  ];
}
const req = (messages: ChatMessage[]): ChatRequest => ({ messages, maxTokens: 100, tools: [{ name: 'f', parameters: { type: 'object', properties: {} } }] });

describe('truncateToWindow', () => {
  it('leaves a request that fits untouched', () => {
    const r = req(conversation());
    const t = truncateToWindow(r, 'openai', 1_000_000)!;
    expect(t.request).toBe(r);
    expect(t.droppedTurns).toBe(0);
  });

  it('drops the fewest oldest turns that make it fit, keeping the system prompt and starting at a user turn', () => {
    const r = req(conversation());
    const tokens = (m: ChatMessage[]) => estimateRequestTokens(req(m), 'openai').inputTokens;
    const all = conversation();
    // A window that holds everything from the 3rd exchange's user turn on (index 8), but not from index 3.
    const window = tokens([all[0]!, ...all.slice(8)]) + 1;
    expect(tokens([all[0]!, ...all.slice(3)])).toBeGreaterThan(window);
    const t = truncateToWindow(r, 'openai', window)!;
    expect(t.request.messages).toEqual([all[0], ...all.slice(8)]);
    expect(t.droppedTurns).toBe(7);
    expect(t.inputTokens).toBeLessThanOrEqual(window);
    expect(t.request.tools).toBe(r.tools);
  });

  it('never separates a tool call from its results (a cut falls on a user turn)', () => {
    const all = conversation();
    const tokens = (m: ChatMessage[]) => estimateRequestTokens(req(m), 'anthropic').inputTokens;
    // Enough to keep from index 3 (the user turn before the tool call) on.
    const t = truncateToWindow(req(all), 'anthropic', tokens([all[0]!, ...all.slice(3)]))!;
    expect(t.request.messages).toEqual([all[0], ...all.slice(3)]);
    expect(t.droppedTurns).toBe(2);
  });

  it('gives up when the system prompt and the latest turn alone do not fit', () => {
    expect(truncateToWindow(req(conversation()), 'openai', 10)).toBeUndefined();
  });
});
