import { create } from '@bufbuild/protobuf';
import { CacheMode, CompleteResponseSchema, FinalSchema, FinishReason, ResponseFormatType, Role, ToolChoiceMode } from '@switchyard/contracts';
import { AppError, status } from '@switchyard/grpc';
import { FieldError } from '@switchyard/util';
import { anthropicEventWriter, countTokensRequest, messageBody, parseMessages } from './anthropic';
import { EdgeError, retryHeaders, toEdgeError } from './errors';
import type { DialectPaths } from './field-paths';
import { chatCompletionBody, openAiChunkWriter, parseChatCompletion } from './openai';
import type { HeaderControls } from './router-call';

const controls: HeaderControls = { apiKey: 'k', idempotencyKey: '', feature: '', userId: '', cacheMode: CacheMode.UNSPECIFIED, timeoutMs: undefined };
const PNG = Buffer.from('89504e470d0a1a0a', 'hex');
const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

function badParam(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof EdgeError ? err.extra.param : `not an EdgeError: ${String(err)}`;
  }
  return undefined;
}

describe('OpenAI chat.completions → router request', () => {
  it('maps messages, image parts (data URL and URL), tools, tool choice, response format, seed, stop and user', () => {
    const { init, stream, includeUsage } = parseChatCompletion(
      {
        model: 'chat',
        messages: [
          { role: 'developer', content: 'be brief' },
          { role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}`, detail: 'low' } }, { type: 'image_url', image_url: { url: 'https://x.test/a.jpg' } }] },
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: '{"temp_c":18}' },
        ],
        tools: [{ type: 'function', function: { name: 'get_weather', description: 'weather', parameters: schema, strict: true } }],
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        parallel_tool_calls: false,
        response_format: { type: 'json_schema', json_schema: { name: 'out', schema, strict: true } },
        seed: 7,
        stop: 'END',
        temperature: 0.2,
        max_completion_tokens: 99,
        user: 'u-1',
        stream: true,
        stream_options: { include_usage: true },
      },
      controls,
    );
    expect(stream).toBe(true);
    expect(includeUsage).toBe(true);
    expect(init.route).toBe('chat');
    expect(init.userId).toBe('u-1');
    const [system, user, assistant, tool] = init.messages!;
    expect(system).toEqual({ role: Role.SYSTEM, content: 'be brief' });
    expect(user!.parts![1]).toEqual({ part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array(PNG) }, mediaType: 'image/png', detail: 'low' } } });
    expect(user!.parts![2]).toEqual({ part: { case: 'image', value: { source: { case: 'url', value: 'https://x.test/a.jpg' }, mediaType: '', detail: '' } } });
    expect(assistant).toEqual({ role: Role.ASSISTANT, toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
    expect(tool).toEqual({ role: Role.TOOL, content: '{"temp_c":18}', toolCallId: 'call_1' });
    expect(init.params).toEqual({
      maxTokens: 99,
      temperature: 0.2,
      stop: ['END'],
      seed: 7n,
      tools: [{ name: 'get_weather', description: 'weather', parametersJson: JSON.stringify(schema), strict: true }],
      toolChoice: { mode: ToolChoiceMode.FUNCTION, functionName: 'get_weather' },
      parallelToolCalls: false,
      responseFormat: { type: ResponseFormatType.JSON_SCHEMA, name: 'out', schemaJson: JSON.stringify(schema), strict: true },
    });
  });

  it('header controls win over the body: user, cache mode, idempotency key', () => {
    const { init } = parseChatCompletion({ model: 'chat', messages: [], user: 'body-user' }, { ...controls, userId: 'hdr-user', cacheMode: CacheMode.NO_STORE, idempotencyKey: 'k1', feature: 'f' });
    expect(init).toMatchObject({ userId: 'hdr-user', feature: 'f', idempotencyKey: 'k1', cachePolicy: { mode: CacheMode.NO_STORE } });
  });

  it.each([
    [{ model: 'chat', messages: [], n: 2 }, 'n'],
    [{ model: 'chat', messages: 'hi' }, 'messages'],
    [{ model: 3, messages: [] }, 'model'],
    [{ model: 'chat', messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    [{ model: 'chat', messages: [{ role: 'assistant', content: [{ type: 'image_url', image_url: { url: 'u' } }] }] }, 'messages[0].content[0].type'],
    [{ model: 'chat', messages: [], tools: [{ type: 'retrieval' }] }, 'tools[0].type'],
    [{ model: 'chat', messages: [], tool_choice: 'sometimes' }, 'tool_choice'],
    [{ model: 'chat', messages: [], response_format: { type: 'yaml' } }, 'response_format.type'],
    [{ model: 'chat', messages: [], frequency_penalty: 0.5 }, 'frequency_penalty'],
    [{ model: 'chat', messages: [], max_tokens: 1.5 }, 'max_tokens'],
    [{ model: 'chat', messages: [], temprature: 1 }, 'temprature'],
    [{ model: 'chat', messages: [], max_tokens: 0 }, 'max_tokens'],
    [{ model: 'chat', messages: [], max_tokens: null, max_completion_tokens: 0 }, 'max_completion_tokens'],
    [{ model: 'chat', messages: [], store: true }, 'store'],
    [{ model: 'chat', messages: [], metadata: { team: 'a' } }, 'metadata'],
    [{ model: 'chat', messages: [], top_logprobs: 3 }, 'top_logprobs'],
    [{ model: 'chat', messages: [], logit_bias: { '50256': -100 } }, 'logit_bias'],
    [{ model: 'chat', messages: [], service_tier: 'flex' }, 'service_tier'],
    [{ model: 'chat', messages: [], modalities: ['text', 'audio'] }, 'modalities'],
  ])('%j is refused naming %s', (body, param) => {
    expect(badParam(() => parseChatCompletion(body, controls))).toBe(param);
  });

  it('store, metadata, top_logprobs, logit_bias, service_tier and modalities at their defaults are accepted', () => {
    expect(parseChatCompletion({ model: 'chat', messages: [], store: false, metadata: {} }, controls).init.route).toBe('chat');
    expect(parseChatCompletion({ model: 'chat', messages: [], store: null, metadata: null }, controls).init.route).toBe('chat');
    const defaults = { top_logprobs: null, logit_bias: {}, service_tier: 'auto', modalities: ['text'] };
    expect(parseChatCompletion({ model: 'chat', messages: [], ...defaults }, controls).init.route).toBe('chat');
    expect(parseChatCompletion({ model: 'chat', messages: [], top_logprobs: 0, logit_bias: null, service_tier: null, modalities: null }, controls).init.route).toBe('chat');
  });

  it('a schema nested too deeply to be read back is refused naming it, not a stack overflow', () => {
    let deep: unknown = {};
    for (let i = 0; i < 20_000; i++) deep = { x: [deep] };
    const tool = (parameters: unknown) => ({ type: 'function', function: { name: 'f', parameters } });
    expect(badParam(() => parseChatCompletion({ model: 'chat', messages: [], tools: [tool({ type: 'object', properties: {} }), tool(deep)] }, controls))).toBe('tools[1].function.parameters');
    expect(badParam(() => parseChatCompletion({ model: 'chat', messages: [], response_format: { type: 'json_schema', json_schema: { name: 's', schema: deep } } }, controls))).toBe('response_format.json_schema.schema');
    expect(badParam(() => parseMessages({ model: 'claude', max_tokens: 8, messages: [], tools: [{ name: 'f', input_schema: deep }] }, controls))).toBe('tools[0].input_schema');
    const toolUse = { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'f', input: deep }] };
    expect(badParam(() => parseMessages({ model: 'claude', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }, toolUse] }, controls))).toBe('messages[1].content[0].input');
  });

  it('answers: tool calls with null content; a stream ends with finish, usage and [DONE], or an error event and no [DONE]', () => {
    const res = create(CompleteResponseSchema, { requestId: 'r1', finishReason: FinishReason.TOOL_CALLS, toolCalls: [{ id: 'c', name: 'f', arguments: '{}' }], usage: { inputTokens: 3, outputTokens: 4 } });
    expect(chatCompletionBody(res, 'chat', 1)).toMatchObject({ choices: [{ message: { content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls' }], usage: { total_tokens: 7 } });
    const w = openAiChunkWriter('id', 'chat', 1, true);
    const clean = w.final(create(FinalSchema, { finishReason: FinishReason.STOP, usage: { inputTokens: 1, outputTokens: 2 } }));
    expect(clean).toContain('"finish_reason":"stop"');
    expect(clean).toContain('"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}');
    expect(clean.endsWith('data: [DONE]\n\n')).toBe(true);
    const cut = w.final(create(FinalSchema, { finishReason: FinishReason.INCOMPLETE, errorMessage: 'upstream reset' }));
    expect(cut).toMatch(/^data: \{"error":\{"message":"stream interrupted after output was sent: upstream reset"/);
    expect(cut).not.toContain('[DONE]');
  });
});

describe('Anthropic messages → router request', () => {
  it('maps system, text and image blocks, tool_use and tool_result (in order), tools and tool_choice', () => {
    const { init } = parseMessages(
      {
        model: 'claude',
        max_tokens: 64,
        system: [{ type: 'text', text: 'be brief' }],
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') } }] },
          { role: 'assistant', content: [{ type: 'text', text: 'checking' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '18C' }] }, { type: 'tool_result', tool_use_id: 'toolu_2', content: 'boom', is_error: true }, { type: 'text', text: 'and now?' }] },
        ],
        tools: [{ name: 'get_weather', description: 'weather', input_schema: schema }],
        tool_choice: { type: 'any', disable_parallel_tool_use: true },
        stop_sequences: ['END'],
        metadata: { user_id: 'u-2' },
      },
      controls,
    );
    expect(init.userId).toBe('u-2');
    expect(init.messages).toEqual([
      { role: Role.SYSTEM, content: 'be brief' },
      { role: Role.USER, parts: [{ part: { case: 'text', value: 'look' } }, { part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array(PNG) }, mediaType: 'image/png' } } }] },
      { role: Role.ASSISTANT, content: 'checking', toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      { role: Role.TOOL, toolCallId: 'toolu_1', content: '18C' },
      { role: Role.TOOL, toolCallId: 'toolu_2', content: 'Error: boom' },
      { role: Role.USER, content: 'and now?' },
    ]);
    expect(init.params).toEqual({
      maxTokens: 64,
      stop: ['END'],
      tools: [{ name: 'get_weather', description: 'weather', parametersJson: JSON.stringify(schema) }],
      toolChoice: { mode: ToolChoiceMode.REQUIRED },
      parallelToolCalls: false,
    });
  });

  it.each([
    [{ model: 'claude', messages: [] }, 'max_tokens'],
    [{ model: 'claude', max_tokens: 8, messages: [{ role: 'system', content: 'x' }] }, 'messages[0].role'],
    [{ model: 'claude', max_tokens: 8, messages: [{ role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 'x' }] }] }, 'messages[0].content[0].type'],
    [{ model: 'claude', max_tokens: 8, messages: [], top_k: 5 }, 'top_k'],
    [{ model: 'claude', max_tokens: 8, messages: [], thinking: {} }, 'thinking'],
  ])('%j is refused naming %s', (body, param) => {
    expect(badParam(() => parseMessages(body, controls))).toBe(param);
  });

  it('answers: content blocks with tool_use input parsed; stream events in order, tool input as input_json_delta', () => {
    const res = create(CompleteResponseSchema, { requestId: 'ab-cd', content: 'hi', finishReason: FinishReason.TOOL_CALLS, toolCalls: [{ id: 't', name: 'f', arguments: '{"a":1}' }] });
    expect(messageBody(res, 'claude')).toMatchObject({ id: 'msg_abcd', content: [{ type: 'text', text: 'hi' }, { type: 'tool_use', id: 't', name: 'f', input: { a: 1 } }], stop_reason: 'tool_use' });
    const w = anthropicEventWriter('r', 'claude');
    expect(w.first(12)).toContain('"usage":{"input_tokens":12,"output_tokens":0}');
    const text = [w.first(0), w.text('a'), w.text('b'), w.toolCall({ index: 0, id: 't', name: 'f', argumentsFragment: '{"a"' }), w.toolCall({ index: 0, id: '', name: '', argumentsFragment: ':1}' }), w.final(create(FinalSchema, { finishReason: FinishReason.TOOL_CALLS }))].join('');
    const events = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(events).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(text).toContain('"delta":{"type":"input_json_delta","partial_json":"{\\"a\\""}');
    expect(w.final(create(FinalSchema, { finishReason: FinishReason.INCOMPLETE, errorMessage: 'x' }))).toMatch(/^event: error\n/);
  });

  it('count_tokens is the router request a messages call with the same body would make', () => {
    const body = { model: 'claude', system: 'be brief', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') } }] }], tools: [{ name: 'f', input_schema: schema }] };
    const counted = countTokensRequest(body).init;
    const { init } = parseMessages({ ...body, max_tokens: 1 }, controls);
    expect(counted).toEqual({ route: init.route, messages: init.messages, params: init.params });
    expect(badParam(() => countTokensRequest({ model: 'claude', messages: [], max_tokens: 8 }))).toBe('max_tokens');
  });
});

describe('router field paths → the caller\'s body', () => {
  const routerField = (field: string, problem = 'is wrong') => new FieldError(field, problem);
  const param = (err: unknown, paths?: DialectPaths) => toEdgeError(err, paths).extra.param;

  it('OpenAI: tool schemas, images, tool calls and response formats as the body spells them', () => {
    expect(param(routerField('params.tools[0].parameters_json.type'))).toBe('tools[0].function.parameters.type');
    expect(param(routerField('messages[0].parts[1].image.url'))).toBe('messages[0].content[1].image_url.url');
    expect(param(routerField('messages[2].tool_calls[0].arguments'))).toBe('messages[2].tool_calls[0].function.arguments');
    expect(param(routerField('params.response_format.schema_json'))).toBe('response_format.json_schema.schema');
    expect(param(routerField('route'))).toBe('model');
    const both = toEdgeError(new FieldError('params.max_tokens', 'too big', { more: [{ field: 'user_id', problem: 'too long' }] }));
    expect(both.message).toBe('max_tokens: too big; user: too long');
  });

  it('Anthropic: message indices through a system prompt and tool_result blocks, and its own names', () => {
    const { paths } = parseMessages(
      {
        model: 'claude',
        max_tokens: 8,
        system: 'be brief',
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: [{ type: 'text', text: 'checking' }, { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }, { type: 'text', text: 'and' }, { type: 'image', source: { type: 'url', url: 'u' } }] },
        ],
      },
      controls,
    );
    // Router messages: 0 system, 1 user, 2 assistant, 3 tool (the tool_result), 4 user (text and image).
    expect(param(routerField('messages[1].content'), paths)).toBe('messages[0].content');
    expect(param(routerField('messages[2].tool_calls[0].arguments'), paths)).toBe('messages[1].content[1].input');
    expect(param(routerField('messages[3].tool_call_id'), paths)).toBe('messages[2].content[0].tool_use_id');
    expect(param(routerField('messages[4].parts[1].image.url'), paths)).toBe('messages[2].content[2].source.url');
    expect(param(routerField('messages[0].content'), paths)).toBe('system');
    expect(param(routerField('params.tools[0].parameters_json.type'), paths)).toBe('tools[0].input_schema.type');
    expect(param(routerField('params.stop[0]'), paths)).toBe('stop_sequences[0]');
    expect(badParam(() => parseMessages({ model: 'claude', max_tokens: 8, messages: [{ role: 'user', content: [] }] }, controls))).toBe('messages[0].content');
  });
});

describe('router errors → HTTP', () => {
  const allFailed = (classes: string[]) =>
    new AppError(status.UNAVAILABLE, 'every candidate failed', {
      retryDelayMs: 1500,
      errorInfo: { reason: 'ALL_CANDIDATES_FAILED', domain: 'switchyard.router', metadata: Object.fromEntries(classes.map((c, i) => [`attempt_${i + 1}`, `deployment=d class=${c}`])) },
    });

  it('every attempt overloaded is 529; otherwise 503; both say when to retry, and not to when the router already retried', () => {
    const over = toEdgeError(allFailed(['OVERLOADED', 'OVERLOADED']));
    expect([over.status, over.kind]).toEqual([529, 'overloaded']);
    expect(retryHeaders(over)).toEqual({ 'retry-after': '2', 'retry-after-ms': '1500', 'x-should-retry': 'false' });
    const mixed = toEdgeError(allFailed(['OVERLOADED', 'SERVER_ERROR']));
    expect(mixed.status).toBe(503);
    expect(retryHeaders(toEdgeError(allFailed(['SERVER_ERROR'])))).toEqual({ 'retry-after': '2', 'retry-after-ms': '1500' });
  });

  it.each([
    [status.INVALID_ARGUMENT, 400],
    [status.UNAUTHENTICATED, 401],
    [status.PERMISSION_DENIED, 403],
    [status.NOT_FOUND, 404],
    [status.ABORTED, 409],
    [status.RESOURCE_EXHAUSTED, 429],
    [status.DEADLINE_EXCEEDED, 504],
    [status.INTERNAL, 500],
  ])('gRPC code %s is HTTP %s', (code, http) => {
    expect(toEdgeError(new AppError(code, 'x')).status).toBe(http);
  });

  it('a field error names the parameter in the dialect: params.max_tokens is max_tokens, route is model', () => {
    const err = toEdgeError(new AppError(status.INVALID_ARGUMENT, 'bad', { badRequest: [{ field: 'params.max_tokens', description: 'too big' }] }));
    expect(err.extra.param).toBe('max_tokens');
  });
});
