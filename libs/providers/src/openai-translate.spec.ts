import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { InvalidChatRequestError } from './errors';
import { defaultMaxTokensParam, fromOpenAIChunk, fromOpenAIFinishReason, fromOpenAIResponse, toOpenAIParams } from './openai-translate';
import type { ChatRequest } from './types';

const base: ChatRequest = {
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi' },
  ],
  maxTokens: 64,
};

describe('toOpenAIParams', () => {
  it('maps every neutral field to its Chat Completions name', () => {
    const params = toOpenAIParams({ ...base, temperature: 0.2, topP: 0.9, stop: ['\n\n', 'END'], user: 'u-1' }, { model: 'gpt-4o-mini' });
    expect(params).toEqual({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
      ],
      max_completion_tokens: 64,
      temperature: 0.2,
      top_p: 0.9,
      stop: ['\n\n', 'END'],
      user: 'u-1',
    });
  });

  it('sends only fields the caller set, so provider defaults stay in force', () => {
    expect(Object.keys(toOpenAIParams(base, { model: 'm' })).sort()).toEqual(['max_completion_tokens', 'messages', 'model']);
  });

  it('asks for usage on streams', () => {
    const params = toOpenAIParams(base, { model: 'm', stream: true });
    expect(params.stream).toBe(true);
    expect(params.stream_options).toEqual({ include_usage: true });
  });

  it('uses max_tokens for openai-compatible servers and honours an explicit override', () => {
    expect(defaultMaxTokensParam('openai-compatible')).toBe('max_tokens');
    expect(defaultMaxTokensParam('azure')).toBe('max_completion_tokens');
    const compat = toOpenAIParams(base, { model: 'm', provider: 'openai-compatible' }) as unknown as Record<string, unknown>;
    expect(compat['max_tokens']).toBe(64);
    expect(compat['max_completion_tokens']).toBeUndefined();
    const forced = toOpenAIParams(base, { model: 'm', maxTokensParam: 'max_tokens' }) as unknown as Record<string, unknown>;
    expect(forced['max_tokens']).toBe(64);
  });

  it.each([
    [{ ...base, messages: [] }, 'messages'],
    [{ ...base, maxTokens: 0 }, 'maxTokens'],
    [{ ...base, maxTokens: -5 }, 'maxTokens'],
    [{ ...base, maxTokens: 1.5 }, 'maxTokens'],
    [{ ...base, temperature: 2.5 }, 'temperature'],
    [{ ...base, topP: 1.1 }, 'topP'],
    [{ ...base, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    [{ ...base, stop: [''] }, 'stop[0]'],
    [{ ...base, messages: [{ role: 'function', content: 'x' }] }, 'messages[0].role'],
    [{ ...base, messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].toolCallId'],
    [{ ...base, messages: [{ role: 'user', content: 42 }] }, 'messages[0].content'],
    [{ ...base, messages: [{ role: 'system', content: 'only system' }] }, 'messages'],
  ] as [ChatRequest, string][])('rejects bad input naming the field (%#: %s)', (req, field) => {
    let thrown: unknown;
    try {
      toOpenAIParams(req, { model: 'm' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(InvalidChatRequestError);
    expect((thrown as InvalidChatRequestError).field).toBe(field);
    expect((thrown as Error).message.startsWith(`${field}: `)).toBe(true);
  });
});

describe('fromOpenAIResponse', () => {
  const completion = (finish: string, content: string | null = 'hello'): ChatCompletion =>
    ({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini-2024-07-18',
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: finish, logprobs: null }],
      usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
    }) as unknown as ChatCompletion;

  it('maps content, usage, model, the completion id and the metadata passed in', () => {
    expect(fromOpenAIResponse(completion('stop'), { upstreamRequestId: 'req_1' })).toEqual({
      content: 'hello',
      finishReason: 'stop',
      usage: { inputTokens: 12, outputTokens: 3 },
      model: 'gpt-4o-mini-2024-07-18',
      responseId: 'chatcmpl-1',
      upstreamRequestId: 'req_1',
    });
  });

  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['content_filter', 'content_filter'],
    ['tool_calls', 'tool_calls'],
    ['function_call', 'tool_calls'],
  ])('maps finish_reason %s → %s', (from, to) => {
    expect(fromOpenAIResponse(completion(from)).finishReason).toBe(to);
    expect(fromOpenAIFinishReason(from)).toBe(to);
  });

  it('treats a null content (filtered / tool call) as empty text', () => {
    expect(fromOpenAIResponse(completion('content_filter', null)).content).toBe('');
  });

  it('round-trips: a request built by toOpenAIParams and its answer translate back exactly', () => {
    const params = toOpenAIParams(base, { model: 'gpt-4o-mini' });
    const res = fromOpenAIResponse({ ...completion('length'), model: params.model });
    expect(res).toMatchObject({ model: 'gpt-4o-mini', finishReason: 'length' });
  });
});

describe('fromOpenAIChunk', () => {
  const chunk = (delta: object, finish: string | null = null, usage?: object): ChatCompletionChunk =>
    ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) }) as ChatCompletionChunk;

  it('extracts text, skips the empty role-only first chunk, and reads finish and usage chunks (each with the completion id)', () => {
    expect(fromOpenAIChunk(chunk({ role: 'assistant', content: '' }))).toEqual({ model: 'm', responseId: 'c' });
    expect(fromOpenAIChunk(chunk({ content: 'He' }))).toEqual({ text: 'He', model: 'm', responseId: 'c' });
    expect(fromOpenAIChunk(chunk({}, 'stop'))).toEqual({ finishReason: 'stop', model: 'm', responseId: 'c' });
    expect(fromOpenAIChunk(chunk({}, null, { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 }))).toEqual({
      usage: { inputTokens: 9, outputTokens: 2 },
      model: 'm',
      responseId: 'c',
    });
  });
});
