import type { Message, RawMessageStreamEvent } from '@anthropic-ai/sdk/resources/messages';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { fromAnthropicEvent, fromAnthropicResponse, toAnthropicParams } from './anthropic-translate';
import { fromOpenAIChunk, fromOpenAIResponse, toOpenAIParams } from './openai-translate';
import type { ChatRequest, ToolDefinition } from './types';

const WEATHER: ToolDefinition = {
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};
const PNG_B64 = 'iVBORw0KGgo=';

/** A whole tool conversation: system, user with an image, assistant calling two tools, both results, user again. */
const conversation: ChatRequest = {
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: [{ type: 'text', text: 'weather in Paris and Oslo?' }, { type: 'image', source: { kind: 'base64', mediaType: 'image/png', data: PNG_B64 }, detail: 'low' }] },
    {
      role: 'assistant',
      content: '',
      toolCalls: [
        { id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 'call:odd/id', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      ],
    },
    { role: 'tool', toolCallId: 'call_abc', content: '18C' },
    { role: 'tool', toolCallId: 'call:odd/id', content: '4C' },
    { role: 'user', content: 'thanks' },
  ],
  maxTokens: 100,
  tools: [WEATHER],
  toolChoice: 'auto',
  parallelToolCalls: false,
  seed: 7,
};

describe('tools, images and structured output on the OpenAI wire', () => {
  it('maps the whole conversation to Chat Completions exactly', () => {
    expect(toOpenAIParams(conversation, { model: 'gpt-4o' })).toEqual({
      model: 'gpt-4o',
      max_completion_tokens: 100,
      messages: [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'weather in Paris and Oslo?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG_B64}`, detail: 'low' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
            { id: 'call:odd/id', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_abc', content: '18C' },
        { role: 'tool', tool_call_id: 'call:odd/id', content: '4C' },
        { role: 'user', content: 'thanks' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: WEATHER.parameters, strict: true } }],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      seed: 7,
    });
  });

  it('keeps a user message given as parts as parts (separate texts stay separate); string content stays a string', () => {
    const req: ChatRequest = { messages: [{ role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }], maxTokens: 5 };
    expect(toOpenAIParams(req, { model: 'm' }).messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }]);
    expect(toAnthropicParams(req, { model: 'c' }).messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }]);
  });

  it('maps tool choices and response formats', () => {
    const req: ChatRequest = { messages: [{ role: 'user', content: 'x' }], maxTokens: 5, tools: [WEATHER] };
    expect(toOpenAIParams({ ...req, toolChoice: { name: 'get_weather' } }, { model: 'm' }).tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
    expect(toOpenAIParams({ ...req, toolChoice: 'required' }, { model: 'm' }).tool_choice).toBe('required');
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    expect(toOpenAIParams({ ...req, responseFormat: { type: 'json_schema', name: 'out', schema, strict: true } }, { model: 'm' }).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'out', schema, strict: true },
    });
    expect(toOpenAIParams({ ...req, responseFormat: { type: 'json_object' } }, { model: 'm' }).response_format).toEqual({ type: 'json_object' });
    // tool_choice and parallel_tool_calls are rejected by OpenAI without tools (and mean nothing), so they are not sent then; nor to Anthropic.
    expect(toOpenAIParams({ messages: req.messages, maxTokens: 5, toolChoice: 'none' }, { model: 'm' })).not.toHaveProperty('tool_choice');
    expect(toAnthropicParams({ messages: req.messages, maxTokens: 5, toolChoice: 'none', parallelToolCalls: false }, { model: 'm' })).not.toHaveProperty('tool_choice');
    expect(toOpenAIParams({ messages: req.messages, maxTokens: 5, parallelToolCalls: false }, { model: 'm' })).not.toHaveProperty('parallel_tool_calls');
  });

  it('reads tool calls and a refusal from a completion', () => {
    const completion = {
      id: 'c',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o',
      choices: [
        {
          index: 0,
          finish_reason: 'tool_calls',
          logprobs: null,
          message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] },
        },
      ],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    } as unknown as ChatCompletion;
    expect(fromOpenAIResponse(completion)).toMatchObject({ content: '', finishReason: 'tool_calls', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Rome"}' }] });
    const refused = { ...completion, choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' } }] } as unknown as ChatCompletion;
    expect(fromOpenAIResponse(refused)).toMatchObject({ refusal: 'I cannot help with that.', finishReason: 'stop' });
  });

  it('reads streamed tool_calls deltas by index', () => {
    const chunk = (delta: unknown) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: null }] }) as unknown as ChatCompletionChunk;
    expect(fromOpenAIChunk(chunk({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: '' } }] })).toolCalls).toEqual([
      { type: 'tool_call_delta', index: 1, id: 'call_2', name: 'get_weather', argumentsDelta: '' },
    ]);
    expect(fromOpenAIChunk(chunk({ tool_calls: [{ index: 1, function: { arguments: '{"ci' } }] })).toolCalls).toEqual([{ type: 'tool_call_delta', index: 1, argumentsDelta: '{"ci' }]);
  });
});

describe('tools, images and structured output on the Anthropic wire', () => {
  it('maps the whole conversation to the Messages API exactly: system lifted, results grouped in one user turn first, ids mapped', () => {
    const params = toAnthropicParams(conversation, { model: 'claude' });
    const oddId = 'sy1_' + Buffer.from('call:odd/id').toString('base64url');
    expect(params).toEqual({
      model: 'claude',
      max_tokens: 100,
      system: 'be brief',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'weather in Paris and Oslo?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'tool_use', id: 'call_abc', name: 'get_weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: oddId, name: 'get_weather', input: { city: 'Oslo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'call_abc', content: '18C' },
            { type: 'tool_result', tool_use_id: oddId, content: '4C' },
            { type: 'text', text: 'thanks' },
          ],
        },
      ],
      // seed is not an Anthropic field (fitRequest drops it with a note); the translation never sends it.
      tools: [{ name: 'get_weather', description: 'Current weather for a city', input_schema: WEATHER.parameters, strict: true }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
    });
  });

  it.each([
    ['auto', { type: 'auto' }],
    ['required', { type: 'any' }],
    ['none', { type: 'none' }],
    [{ name: 'get_weather' }, { type: 'tool', name: 'get_weather' }],
  ] as const)('maps tool choice %j → %j', (choice, wire) => {
    const params = toAnthropicParams({ messages: [{ role: 'user', content: 'x' }], maxTokens: 5, tools: [WEATHER], toolChoice: choice }, { model: 'c' });
    expect(params.tool_choice).toEqual(wire);
  });

  it('sends URL images as url sources and data URLs as base64 sources', () => {
    const params = toAnthropicParams(
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', source: { kind: 'url', url: 'https://example.com/a.jpg' } },
              { type: 'image', source: { kind: 'url', url: `data:image/png;base64,${PNG_B64}` } },
            ],
          },
        ],
        maxTokens: 5,
      },
      { model: 'c' },
    );
    expect(params.messages[0]!.content).toEqual([
      { type: 'image', source: { type: 'url', url: 'https://example.com/a.jpg' } },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_B64 } },
    ]);
  });

  const schema = { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] };
  const structured: ChatRequest = { messages: [{ role: 'user', content: 'x' }], maxTokens: 5, responseFormat: { type: 'json_schema', name: 'result', schema } };

  it('asks for native JSON-schema output where the deployment has it', () => {
    const params = toAnthropicParams(structured, { model: 'c', nativeJsonSchema: true }) as unknown as Record<string, unknown>;
    expect(params['output_config']).toEqual({ format: { type: 'json_schema', schema } });
    expect(params['tools']).toBeUndefined();
  });

  it('otherwise forces one tool whose input is the schema, and unwraps its input back into content', () => {
    const params = toAnthropicParams(structured, { model: 'c' });
    expect(params.tools).toEqual([{ name: 'result', description: "Give the answer as this tool's input.", input_schema: schema }]);
    expect(params.tool_choice).toEqual({ type: 'tool', name: 'result' });
    const message = {
      id: 'msg',
      type: 'message',
      role: 'assistant',
      model: 'c',
      stop_reason: 'tool_use',
      stop_sequence: null,
      content: [{ type: 'tool_use', id: 'toolu_1', name: 'result', input: { answer: 'yes' } }],
      usage: { input_tokens: 3, output_tokens: 4 },
    } as unknown as Message;
    const res = fromAnthropicResponse(message, {}, 'result');
    expect(res).toMatchObject({ content: '{"answer":"yes"}', finishReason: 'stop' });
    expect(res.toolCalls).toBeUndefined();
  });

  it('reads tool_use blocks as tool calls with ids mapped back', () => {
    const oddId = 'sy1_' + Buffer.from('call:odd/id').toString('base64url');
    const message = {
      id: 'msg',
      type: 'message',
      role: 'assistant',
      model: 'c',
      stop_reason: 'tool_use',
      stop_sequence: null,
      content: [
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'toolu_01A', name: 'get_weather', input: { city: 'Paris' } },
        { type: 'tool_use', id: oddId, name: 'get_weather', input: {} },
      ],
      usage: { input_tokens: 3, output_tokens: 4 },
    } as unknown as Message;
    expect(fromAnthropicResponse(message)).toMatchObject({
      content: 'Checking.',
      finishReason: 'tool_calls',
      toolCalls: [
        { id: 'toolu_01A', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 'call:odd/id', name: 'get_weather', arguments: '{}' },
      ],
    });
  });

  it('reads streamed content_block_start (tool_use) and input_json_delta', () => {
    expect(fromAnthropicEvent({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: {} } } as unknown as RawMessageStreamEvent)).toEqual({
      toolStart: { block: 1, id: 'toolu_9', name: 'get_weather' },
    });
    expect(fromAnthropicEvent({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city"' } } as RawMessageStreamEvent)).toEqual({
      toolArguments: { block: 1, fragment: '{"city"' },
    });
  });
});
