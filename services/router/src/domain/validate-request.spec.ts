import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import type { RouteConfig } from '@switchyard/config';
import { CacheMode, CompleteRequestSchema, ResponseFormatType, Role, ToolChoiceMode, type CompleteRequest } from '@switchyard/contracts';
import { InvalidRequestError } from './errors';
import { largestValidRequestBytes, MAX_STOP_SEQUENCE_CHARS, resolveRoute, validateCall, type ValidationLimits } from './validate-request';

const route: RouteConfig = { candidates: [{ deployment: 'a', priority: 0, weight: 1 }], allowStaleOnError: true, fallbackOnContentFilter: false, cacheable: true, contextOverflow: 'fallback' };
const limits: ValidationLimits = { maxMessages: 3, maxPromptChars: 100, maxTokens: 1000, defaultMaxTokens: 256 };

type RequestInit = MessageInitShape<typeof CompleteRequestSchema>;

function request(overrides: Partial<RequestInit> = {}): CompleteRequest {
  return create(CompleteRequestSchema, { route: 'chat', messages: [{ role: Role.USER, content: 'hello' }], ...overrides } as RequestInit);
}

function problem(fn: () => unknown): { field: string; problem: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidRequestError) return { field: err.field, problem: err.problem };
    throw err;
  }
  throw new Error('expected InvalidRequestError');
}

describe('resolveRoute', () => {
  it('rejects a missing or unknown route on field route', () => {
    expect(problem(() => resolveRoute({ routes: { chat: route } }, ''))).toEqual({ field: 'route', problem: expect.stringContaining('required') });
    expect(problem(() => resolveRoute({ routes: { chat: route } }, 'nope'))).toEqual({ field: 'route', problem: 'unknown route "nope"' });
    expect(problem(() => resolveRoute({ routes: { chat: route } }, 'toString')).field).toBe('route');
  });
});

describe('validateCall', () => {
  it('builds the neutral request, defaulting max_tokens when 0', () => {
    const call = validateCall(request({ params: { temperature: 0.5, stop: ['END'] }, userId: 'u1' }), route, limits);
    expect(call.chat).toEqual({ messages: [{ role: 'user', content: 'hello' }], maxTokens: 256, temperature: 0.5, stop: ['END'], user: 'u1' });
    expect(call.cache).toEqual({ read: true, write: true, staleOnError: true });
  });

  it.each<[string, Partial<RequestInit>, string]>([
    ['empty messages', { messages: [] }, 'messages'],
    ['too many messages', { messages: Array.from({ length: 4 }, () => ({ role: Role.USER, content: 'x' })) }, 'messages'],
    ['unspecified role', { messages: [{ role: Role.UNSPECIFIED, content: 'x' }] }, 'messages[0].role'],
    ['unknown role number', { messages: [{ role: 42 as Role, content: 'x' }] }, 'messages[0].role'],
    ['empty content', { messages: [{ role: Role.USER, content: 'hi' }, { role: Role.USER, content: '  ' }] }, 'messages[1].content'],
    ['only system messages', { messages: [{ role: Role.SYSTEM, content: 'be nice' }] }, 'messages'],
    ['prompt too large', { messages: [{ role: Role.USER, content: 'x'.repeat(101) }] }, 'messages'],
    ['max_tokens above the bound', { params: { maxTokens: 1001 } }, 'params.max_tokens'],
    ['temperature above 2', { params: { temperature: 2.5 } }, 'params.temperature'],
    ['temperature negative', { params: { temperature: -0.1 } }, 'params.temperature'],
    ['temperature NaN', { params: { temperature: Number.NaN } }, 'params.temperature'],
    ['top_p above 1', { params: { topP: 1.01 } }, 'params.top_p'],
    ['too many stop sequences', { params: { stop: ['a', 'b', 'c', 'd', 'e'] } }, 'params.stop'],
    ['empty stop sequence', { params: { stop: [''] } }, 'params.stop[0]'],
    ['stop sequence above 256 characters', { params: { stop: ['END', 's'.repeat(257)] } }, 'params.stop[1]'],
    ['feature with spaces', { feature: 'my feature' }, 'feature'],
    ['unknown cache mode', { cachePolicy: { mode: 9 as CacheMode } }, 'cache_policy.mode'],
  ])('rejects %s naming %s', (_name, overrides, field) => {
    expect(problem(() => validateCall(request(overrides), route, limits)).field).toBe(field);
  });

  it('bounds the encoded size of every request it accepts by largestValidRequestBytes', () => {
    // Every field at its bound, in the characters that take the most bytes (3 per UTF-16 unit).
    const wide = (n: number) => '中'.repeat(n);
    const big = { maxMessages: 256, maxPromptChars: 256 * 40, maxTokens: 1000, defaultMaxTokens: 256 };
    const req = request({
      route: wide(40),
      messages: Array.from({ length: 256 }, () => ({ role: Role.USER, content: wide(40) })),
      params: { maxTokens: 1000, temperature: 1.99, topP: 0.99, stop: Array.from({ length: 4 }, () => wide(MAX_STOP_SEQUENCE_CHARS)) },
      userId: wide(256),
      feature: 'f'.repeat(64),
      idempotencyKey: wide(128),
      cachePolicy: { mode: CacheMode.NO_STORE, allowStaleOnError: true },
    });
    expect(() => validateCall(req, route, big)).not.toThrow();
    expect(toBinary(CompleteRequestSchema, req).length).toBeLessThanOrEqual(largestValidRequestBytes(big, 40));
  });

  it('says what the bound is', () => {
    expect(problem(() => validateCall(request({ params: { maxTokens: 5000 } }), route, limits)).problem).toBe('must be between 1 and 1000 (0 means the default 256), got 5000');
  });

  it('bypasses the cache when the route is not cacheable or the caller says so', () => {
    expect(validateCall(request(), { ...route, cacheable: false }, limits).cache).toEqual({ read: false, write: false, staleOnError: false });
    expect(validateCall(request({ cachePolicy: { mode: CacheMode.BYPASS } }), route, limits).cache.read).toBe(false);
    expect(validateCall(request({ cachePolicy: { mode: CacheMode.REFRESH } }), route, limits).cache).toEqual({ read: false, write: true, staleOnError: false });
    expect(validateCall(request({ cachePolicy: { mode: CacheMode.NO_STORE, allowStaleOnError: false } }), route, limits).cache).toEqual({ read: true, write: false, staleOnError: false });
  });
});

describe('validateCall: tools, images, structured output (issue 12)', () => {
  const wide: ValidationLimits = { ...limits, maxMessages: 10, maxPromptChars: 10_000 };
  const weather = { name: 'get_weather', description: 'weather of a city', parametersJson: '{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}' };

  it('maps a tool conversation, tools, tool choice, parallel calls, response format and seed to the neutral model', () => {
    const call = validateCall(
      request({
        messages: [
          { role: Role.USER, content: 'weather in Paris?' },
          { role: Role.ASSISTANT, toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
          { role: Role.TOOL, toolCallId: 'call_1', content: '{"temp":21}' },
        ],
        params: {
          tools: [weather, { name: 'now' }],
          toolChoice: { mode: ToolChoiceMode.FUNCTION, functionName: 'get_weather' },
          parallelToolCalls: false,
          responseFormat: { type: ResponseFormatType.JSON_SCHEMA, name: 'w', schemaJson: '{"type":"object"}', strict: true },
          seed: 42n,
        },
      }),
      route,
      wide,
    );
    expect(call.chat).toEqual({
      messages: [
        { role: 'user', content: 'weather in Paris?' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
        { role: 'tool', content: '{"temp":21}', toolCallId: 'call_1' },
      ],
      maxTokens: 256,
      tools: [
        { name: 'get_weather', description: 'weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
        // An empty parameters_json is a function without arguments.
        { name: 'now', parameters: { type: 'object', properties: {} } },
      ],
      toolChoice: { name: 'get_weather' },
      parallelToolCalls: false,
      responseFormat: { type: 'json_schema', name: 'w', schema: { type: 'object' }, strict: true },
      seed: 42,
    });
  });

  it('maps image parts: inline bytes become base64 with their media type, URLs stay URLs', () => {
    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const call = validateCall(
      request({
        messages: [
          {
            role: Role.USER,
            parts: [
              { part: { case: 'text', value: 'what is this?' } },
              { part: { case: 'image', value: { source: { case: 'data', value: bytes }, mediaType: 'image/png', detail: 'low' } } },
              { part: { case: 'image', value: { source: { case: 'url', value: 'https://example.com/a.jpg' } } } },
            ],
          },
        ],
      }),
      route,
      wide,
    );
    expect(call.chat.messages[0]!.content).toEqual([
      { type: 'text', text: 'what is this?' },
      { type: 'image', source: { kind: 'base64', mediaType: 'image/png', data: Buffer.from(bytes).toString('base64') }, detail: 'low' },
      { type: 'image', source: { kind: 'url', url: 'https://example.com/a.jpg' } },
    ]);
  });

  const user = { role: Role.USER, content: 'hi' };
  it.each<[string, Partial<RequestInit>, string]>([
    ['content and parts together', { messages: [{ role: Role.USER, content: 'a', parts: [{ part: { case: 'text', value: 'b' } }] }] }, 'messages[0].parts'],
    ['parameters_json that is not JSON', { params: { tools: [{ name: 'f', parametersJson: '{type:' }] } }, 'params.tools[0].parameters_json'],
    ['parameters that are not an object schema', { params: { tools: [{ name: 'f', parametersJson: '{"type":"string"}' }] } }, 'params.tools[0].parameters_json.type'],
    ['an invalid JSON Schema type', { params: { tools: [{ name: 'f', parametersJson: '{"type":"object","properties":{"a":{"type":"strng"}}}' }] } }, 'params.tools[0].parameters_json.properties.a.type'],
    ['a bad tool name', { params: { tools: [{ name: 'bad name' }] } }, 'params.tools[0].name'],
    ['schema_json that is not JSON', { params: { responseFormat: { type: ResponseFormatType.JSON_SCHEMA, name: 'x', schemaJson: 'nope' } } }, 'params.response_format.schema_json'],
    ['a named tool choice that is not among the tools', { params: { tools: [weather], toolChoice: { mode: ToolChoiceMode.FUNCTION, functionName: 'other' } } }, 'params.tool_choice.function_name'],
    ['a seed beyond a safe integer', { params: { seed: 2n ** 60n } }, 'params.seed'],
    ['a tool message whose id matches no earlier call', { messages: [user, { role: Role.TOOL, toolCallId: 'call_x', content: 'r' }] }, 'messages[1].tool_call_id'],
    [
      'tool-call arguments that are not JSON',
      { messages: [user, { role: Role.ASSISTANT, toolCalls: [{ id: 'c1', name: 'f', arguments: '{oops' }] }, { role: Role.TOOL, toolCallId: 'c1', content: 'r' }] },
      'messages[1].tool_calls[0].arguments',
    ],
    [
      'an image over the size bound',
      { messages: [{ role: Role.USER, parts: [{ part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array(5 * 1024 * 1024 + 1) }, mediaType: 'image/png' } } }] }] },
      'messages[0].parts[0].image.data',
    ],
    ['an image media type no provider takes', { messages: [{ role: Role.USER, parts: [{ part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array(4) }, mediaType: 'image/tiff' } } }] }] }, 'messages[0].parts[0].image.media_type'],
    ['inline image bytes without a media type', { messages: [{ role: Role.USER, parts: [{ part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array(4) } } } }] }] }, 'messages[0].parts[0].image.media_type'],
  ])('rejects %s naming %s', (_name, overrides, field) => {
    expect(problem(() => validateCall(request(overrides), route, wide)).field).toBe(field);
  });
});
