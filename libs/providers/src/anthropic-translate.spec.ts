import type { Message, RawMessageStreamEvent } from '@anthropic-ai/sdk/resources/messages';
import { InvalidChatRequestError } from './errors';
import { fromAnthropicEvent, fromAnthropicResponse, fromAnthropicStopReason, toAnthropicParams } from './anthropic-translate';
import type { ChatRequest } from './types';

describe('toAnthropicParams', () => {
  it('lifts system messages into `system`, maps fields, and keeps max_tokens', () => {
    const params = toAnthropicParams(
      {
        messages: [
          { role: 'system', content: 'rule one' },
          { role: 'user', content: 'hi' },
          { role: 'system', content: 'rule two' },
          { role: 'assistant', content: 'hello' },
          { role: 'user', content: 'bye' },
        ],
        maxTokens: 100,
        temperature: 0.5,
        topP: 0.8,
        stop: ['STOP'],
        user: 'u-9',
      },
      { model: 'claude-sonnet-4-5' },
    );
    expect(params).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      system: 'rule one\n\nrule two',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'bye' },
      ],
      temperature: 0.5,
      top_p: 0.8,
      stop_sequences: ['STOP'],
      metadata: { user_id: 'u-9' },
    });
  });

  it('merges consecutive same-role turns (also across a removed system message) so roles alternate', () => {
    const params = toAnthropicParams(
      {
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
          { role: 'system', content: 's' },
          { role: 'user', content: 'c' },
          { role: 'assistant', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
        maxTokens: 5,
      },
      { model: 'm' },
    );
    expect(params.messages).toEqual([
      { role: 'user', content: 'a\n\nb\n\nc' },
      { role: 'assistant', content: 'x\n\ny' },
    ]);
    expect(params.system).toBe('s');
  });

  it('omits unset optional fields and sets stream only for streams', () => {
    const req: ChatRequest = { messages: [{ role: 'user', content: 'q' }], maxTokens: 1 };
    expect(Object.keys(toAnthropicParams(req, { model: 'm' })).sort()).toEqual(['max_tokens', 'messages', 'model']);
    expect(toAnthropicParams(req, { model: 'm', stream: true }).stream).toBe(true);
  });

  it.each([
    [{ messages: [{ role: 'assistant', content: 'x' }, { role: 'user', content: 'y' }], maxTokens: 5 }, 'messages[0].role'],
    [{ messages: [{ role: 'system', content: 's' }, { role: 'assistant', content: 'x' }], maxTokens: 5 }, 'messages[1].role'],
    [{ messages: [{ role: 'user', content: 'x' }], maxTokens: 0 }, 'maxTokens'],
    [{ messages: [], maxTokens: 5 }, 'messages'],
    [{ messages: [{ role: 'user', content: 'x' }], maxTokens: 5, temperature: 1.5 }, 'temperature'],
  ] as [ChatRequest, string][])('rejects input Anthropic cannot take, naming the field (%#: %s)', (req, field) => {
    expect(() => toAnthropicParams(req, { model: 'm' })).toThrow(InvalidChatRequestError);
    try {
      toAnthropicParams(req, { model: 'm' });
    } catch (err) {
      expect((err as InvalidChatRequestError).field).toBe(field);
    }
  });
});

describe('fromAnthropicResponse', () => {
  const message = (stop: string | null, usage: Partial<Message['usage']> = {}, stopSequence: string | null = null): Message =>
    ({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5-20250929',
      content: [
        { type: 'text', text: 'Hel', citations: null },
        { type: 'text', text: 'lo', citations: null },
      ],
      stop_reason: stop,
      stop_sequence: stopSequence,
      usage: { input_tokens: 20, output_tokens: 4, cache_creation_input_tokens: null, cache_read_input_tokens: null, ...usage },
    }) as unknown as Message;

  it('concatenates text blocks and maps usage and the message id', () => {
    expect(fromAnthropicResponse(message('end_turn'), { upstreamRequestId: 'req_a' })).toEqual({
      content: 'Hello',
      finishReason: 'stop',
      usage: { inputTokens: 20, outputTokens: 4 },
      model: 'claude-sonnet-4-5-20250929',
      responseId: 'msg_1',
      upstreamRequestId: 'req_a',
    });
  });

  it('keeps the stop sequence that ended the answer (a plain stop), and none for another stop', () => {
    expect(fromAnthropicResponse(message('stop_sequence', {}, 'END'))).toMatchObject({ finishReason: 'stop', stopSequence: 'END' });
    expect(fromAnthropicResponse(message('end_turn'))).not.toHaveProperty('stopSequence');
    expect(fromAnthropicResponse(message('stop_sequence'))).not.toHaveProperty('stopSequence');
  });

  it('counts prompt-cache reads and writes as input tokens', () => {
    expect(fromAnthropicResponse(message('end_turn', { cache_creation_input_tokens: 5, cache_read_input_tokens: 7 })).usage.inputTokens).toBe(32);
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['max_tokens', 'length'],
    ['model_context_window_exceeded', 'length'],
    ['refusal', 'content_filter'],
    ['tool_use', 'tool_calls'],
    ['pause_turn', 'other'],
  ])('maps stop_reason %s → %s', (from, to) => {
    expect(fromAnthropicStopReason(from)).toBe(to);
    expect(fromAnthropicResponse(message(from)).finishReason).toBe(to);
  });
});

describe('fromAnthropicEvent', () => {
  it('reads input usage from message_start, text from deltas, stop and output usage from message_delta', () => {
    const start = { type: 'message_start', message: { model: 'claude', usage: { input_tokens: 11, output_tokens: 1 } } } as unknown as RawMessageStreamEvent;
    expect(fromAnthropicEvent(start)).toEqual({ inputTokens: 11, outputTokens: 1, model: 'claude' });
    const delta = { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } } as RawMessageStreamEvent;
    expect(fromAnthropicEvent(delta)).toEqual({ text: 'Hi' });
    const md = { type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 7 } } as unknown as RawMessageStreamEvent;
    expect(fromAnthropicEvent(md)).toEqual({ finishReason: 'length', outputTokens: 7 });
    expect(fromAnthropicEvent({ type: 'message_stop' } as RawMessageStreamEvent)).toEqual({ done: true });
  });

  it('reads the matched stop sequence from message_delta', () => {
    const md = { type: 'message_delta', delta: { stop_reason: 'stop_sequence', stop_sequence: '###' }, usage: { output_tokens: 3 } } as unknown as RawMessageStreamEvent;
    expect(fromAnthropicEvent(md)).toEqual({ finishReason: 'stop', stopSequence: '###', outputTokens: 3 });
  });

  it('reads the streamed answer\'s id from message_start', () => {
    const start = { type: 'message_start', message: { id: 'msg_01abc', model: 'claude', usage: { input_tokens: 11, output_tokens: 1 } } } as unknown as RawMessageStreamEvent;
    expect(fromAnthropicEvent(start)).toMatchObject({ responseId: 'msg_01abc' });
  });
});
