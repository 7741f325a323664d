import { crc32, deflateSync } from 'node:zlib';
import Ajv from 'ajv';
import { hashApiKey } from '@switchyard/config';
import { CacheStatus, ErrorClass, FinishReason, ResponseFormatType, Role, ToolChoiceMode, type Final, type ToolCall, type ToolCallDelta } from '@switchyard/contracts';
import { parseGrpcError, status } from '@switchyard/grpc';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ChatMessageSchema } from '@switchyard/contracts';
import { startStack, type Stack } from './stack';

/**
 * Issue 12 through the router: tools, structured output and images from a
 * gRPC caller to the providers' wires (real SDKs against the simulator, real
 * peers, Redis and NATS), including a tool conversation whose primary fails
 * half-way and finishes on Anthropic.
 */

const KEY = 'tools-key';
const auth = { metadata: { 'x-api-key': KEY } };

function gatewayYaml(sim: string): string {
  const price = 'price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }';
  return `
deployments:
  oai: { provider: openai, baseUrl: "${sim}/v1", model: gpt-4o, apiKey: env:SIM_PROVIDER_KEY, ${price} }
  ant: { provider: anthropic, baseUrl: "${sim}", model: claude-sonnet-4-6, apiKey: env:SIM_PROVIDER_KEY, ${price} }
  ant-native: { provider: anthropic, baseUrl: "${sim}", model: claude-native, apiKey: env:SIM_PROVIDER_KEY, capabilities: { jsonSchema: true }, ${price} }
  small: { provider: openai, baseUrl: "${sim}/v1", model: gpt-small, apiKey: env:SIM_PROVIDER_KEY, contextWindow: 400, ${price} }
  az: { provider: azure, baseUrl: "${sim}", model: gpt-4o-eu, apiVersion: "2024-10-21", apiKey: env:SIM_PROVIDER_KEY, ${price} }
routes:
  tools: { cacheable: false, candidates: [{ deployment: oai }, { deployment: ant, priority: 1 }] }
  oai-only: { cacheable: false, candidates: [{ deployment: oai }] }
  ant-only: { cacheable: false, candidates: [{ deployment: ant }] }
  ant-native-only: { cacheable: false, candidates: [{ deployment: ant-native }] }
  az-only: { cacheable: false, candidates: [{ deployment: az }] }
  oai-cached: { candidates: [{ deployment: oai }] }
  small-truncate: { cacheable: false, contextOverflow: truncate, candidates: [{ deployment: small }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 2, baseMs: 10, capMs: 20 }
  breaker: { consecutiveFailures: 1000 }
`;
}

const MODELS = ['gpt-4o', 'claude-sonnet-4-6', 'claude-native', 'gpt-4o-eu', 'gpt-small'];
function scenario(faults: Record<string, object> = {}) {
  return { seed: 7, deployments: Object.fromEntries(MODELS.map((m) => [m, { faults: faults[m] ?? {}, ...(m === 'gpt-small' ? { contextWindow: 400 } : {}) }])) };
}

const WEATHER_SCHEMA = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
const TIME_SCHEMA = { type: 'object', properties: { city: { type: 'string' }, hour24: { type: 'boolean' } }, required: ['city', 'hour24'], additionalProperties: false };
const WEATHER = { name: 'get_weather', description: 'Current weather for a city', parametersJson: JSON.stringify(WEATHER_SCHEMA) };
const TIME = { name: 'get_time', description: 'Local time in a city', parametersJson: JSON.stringify(TIME_SCHEMA) };
const ajv = new Ajv({ strict: false });

let stack: Stack;

beforeAll(async () => {
  stack = await startStack(gatewayYaml, scenario());
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.sim.setScenario(scenario());
  await stack.sim.reset();
});

async function bodies(model: string): Promise<Record<string, unknown>[]> {
  return (await stack.sim.requests(model)).map((r) => r.body as Record<string, unknown>);
}

/** One StreamComplete read to its end: text, tool-call deltas, and the finals. */
async function readStream(req: Parameters<Stack['client']['streamComplete']>[0]) {
  let text = '';
  const toolDeltas: ToolCallDelta[] = [];
  const finals: Final[] = [];
  for await (const msg of stack.client.streamComplete(req, auth)) {
    if (msg.event.case === 'delta') {
      if (msg.event.value.toolCall) toolDeltas.push(msg.event.value.toolCall);
      else text += msg.event.value.text;
    } else if (msg.event.case === 'final') finals.push(msg.event.value);
  }
  return { text, toolDeltas, finals, final: finals[0]! };
}

/** What a caller does with the deltas: concatenate each call's fragments by index. */
function assemble(deltas: readonly ToolCallDelta[]): { id: string; name: string; arguments: string }[] {
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const d of deltas) {
    const c = (calls[d.index] ??= { id: '', name: '', arguments: '' });
    if (d.id) c.id = d.id;
    if (d.name) c.name = d.name;
    c.arguments += d.argumentsFragment;
  }
  return calls;
}

const plain = (calls: readonly ToolCall[]) => calls.map(({ id, name, arguments: a }) => ({ id, name, arguments: a }));

describe('a tool conversation through the router whose primary fails on the second turn', () => {
  it('turn 1 on OpenAI makes the call; turn 2 (OpenAI down) finishes on Anthropic; each provider received exactly the conversation in its own shape', async () => {
    const messages: MessageInitShape<typeof ChatMessageSchema>[] = [
      { role: Role.SYSTEM, content: 'Use tools when asked.' },
      { role: Role.USER, content: 'Call get_weather for Paris' },
    ];
    const turn1 = await stack.client.complete({ route: 'tools', messages, params: { maxTokens: 200, tools: [WEATHER], toolChoice: { mode: ToolChoiceMode.AUTO } } }, auth);
    expect(turn1.finishReason).toBe(FinishReason.TOOL_CALLS);
    expect(turn1.servedBy?.deployment).toBe('oai');
    expect(turn1.toolCalls).toHaveLength(1);
    const call = turn1.toolCalls[0]!;
    expect(plain([call])).toEqual([{ id: expect.stringMatching(/^call_[A-Za-z0-9]+$/), name: 'get_weather', arguments: expect.any(String) }]);
    expect(ajv.validate(WEATHER_SCHEMA, JSON.parse(call.arguments))).toBe(true);
    expect(await bodies('gpt-4o')).toEqual([
      {
        model: 'gpt-4o',
        messages: [
          { role: 'system', content: 'Use tools when asked.' },
          { role: 'user', content: 'Call get_weather for Paris' },
        ],
        max_completion_tokens: 200,
        tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: WEATHER_SCHEMA } }],
        tool_choice: 'auto',
      },
    ]);

    // Turn 2: the caller sends the call and its result back; OpenAI now fails every request.
    await stack.sim.setScenario(scenario({ 'gpt-4o': { server_error: 1 } }));
    await stack.sim.reset();
    messages.push({ role: Role.ASSISTANT, toolCalls: [{ id: call.id, name: call.name, arguments: call.arguments }] }, { role: Role.TOOL, toolCallId: call.id, content: '{"temp_c":18}' });
    const turn2 = await stack.client.complete({ route: 'tools', messages, params: { maxTokens: 200, tools: [WEATHER], toolChoice: { mode: ToolChoiceMode.AUTO } } }, auth);
    expect(turn2.finishReason).toBe(FinishReason.STOP);
    expect(turn2.content.length).toBeGreaterThan(0);
    expect(turn2.toolCalls).toEqual([]);
    expect(turn2.servedBy?.deployment).toBe('ant');
    expect(turn2.attempts.map((a) => [a.deployment?.deployment, a.errorClass])).toEqual([
      ['oai', ErrorClass.SERVER_ERROR],
      ['oai', ErrorClass.SERVER_ERROR],
      ['ant', ErrorClass.UNSPECIFIED],
    ]);
    const openaiTurn2 = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Use tools when asked.' },
        { role: 'user', content: 'Call get_weather for Paris' },
        { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: call.arguments } }] },
        { role: 'tool', tool_call_id: call.id, content: '{"temp_c":18}' },
      ],
      max_completion_tokens: 200,
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: WEATHER_SCHEMA } }],
      tool_choice: 'auto',
    };
    expect(await bodies('gpt-4o')).toEqual([openaiTurn2, openaiTurn2]);
    expect(await bodies('claude-sonnet-4-6')).toEqual([
      {
        model: 'claude-sonnet-4-6',
        max_tokens: 200,
        system: 'Use tools when asked.',
        messages: [
          { role: 'user', content: 'Call get_weather for Paris' },
          { role: 'assistant', content: [{ type: 'tool_use', id: call.id, name: 'get_weather', input: JSON.parse(call.arguments) }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temp_c":18}' }] },
        ],
        tools: [{ name: 'get_weather', description: 'Current weather for a city', input_schema: WEATHER_SCHEMA }],
        tool_choice: { type: 'auto' },
      },
    ]);
  }, 30_000);
});

describe('parallel tool calls, streamed through StreamComplete', () => {
  const req = (route: string) => ({ route, messages: [{ role: Role.USER, content: 'Call get_weather and get_time for Lisbon' }], params: { maxTokens: 300, tools: [WEATHER, TIME] } });

  it('assemble identically from the OpenAI and Anthropic dialects, and the Final carries the same calls', async () => {
    const assembled: Record<string, { name: string; arguments: string }[]> = {};
    for (const route of ['oai-only', 'ant-only', 'az-only']) {
      const out = await readStream(req(route));
      expect(out.finals).toHaveLength(1);
      expect(out.final.finishReason).toBe(FinishReason.TOOL_CALLS);
      expect(out.text).toBe('');
      const calls = assemble(out.toolDeltas);
      expect(calls.map((c) => c.name)).toEqual(['get_weather', 'get_time']);
      // Each call opens with its index, id and name; later pieces carry argument fragments only.
      for (const [i, c] of calls.entries()) {
        const pieces = out.toolDeltas.filter((d) => d.index === i);
        expect(pieces[0]).toMatchObject({ index: i, id: c.id, name: c.name });
        expect(pieces.length).toBeGreaterThan(2);
      }
      expect(plain(out.final.toolCalls)).toEqual(calls);
      expect(out.final.partialToolCallIndex).toBeUndefined();
      expect(ajv.validate(TIME_SCHEMA, JSON.parse(calls[1]!.arguments))).toBe(true);
      assembled[route] = calls.map(({ name, arguments: a }) => ({ name, arguments: a }));
    }
    expect(assembled['ant-only']).toEqual(assembled['oai-only']);
    expect(assembled['az-only']).toEqual(assembled['oai-only']);
  }, 30_000);

  it('a stream cut inside a tool call after the first piece ends INCOMPLETE with the partial call marked (no failover once committed)', async () => {
    await stack.sim.setScenario({ seed: 7, deployments: { 'gpt-4o': { cutAfterChunks: 3 } } });
    const out = await readStream({ ...req('tools'), route: 'tools' });
    expect(out.finals).toHaveLength(1);
    expect(out.final.finishReason).toBe(FinishReason.INCOMPLETE);
    expect(out.final.errorClass).toBe(ErrorClass.STREAM_INTERRUPTED);
    expect(out.toolDeltas.length).toBeGreaterThan(0);
    const calls = assemble(out.toolDeltas);
    expect(plain(out.final.toolCalls)).toEqual(calls.map((c) => ({ ...c, arguments: c.arguments || '{}' })));
    expect(out.final.partialToolCallIndex).toBe(out.toolDeltas.at(-1)!.index);
    expect(out.final.servedBy?.deployment).toBe('oai');
    expect(await bodies('claude-sonnet-4-6')).toEqual([]);
  }, 30_000);

  it('a failure before the first tool-call piece fails over to Anthropic', async () => {
    await stack.sim.setScenario(scenario({ 'gpt-4o': { unavailable: 1 } }));
    const out = await readStream(req('tools'));
    expect(out.final.finishReason).toBe(FinishReason.TOOL_CALLS);
    expect(out.final.servedBy?.deployment).toBe('ant');
    expect(plain(out.final.toolCalls)).toEqual(assemble(out.toolDeltas));
    expect(out.final.toolCalls.map((c) => c.id)).toEqual([expect.stringMatching(/^toolu_01/), expect.stringMatching(/^toolu_01/)]);
  }, 30_000);
});

describe('structured output through the router', () => {
  const schema = {
    type: 'object',
    properties: { city: { type: 'string' }, rating: { type: 'integer', minimum: 1, maximum: 5 }, tags: { type: 'array', items: { type: 'string' } } },
    required: ['city', 'rating', 'tags'],
    additionalProperties: false,
  };
  const req = (route: string) => ({
    route,
    messages: [{ role: Role.USER, content: 'Rate Vienna as a city' }],
    params: { maxTokens: 300, responseFormat: { type: ResponseFormatType.JSON_SCHEMA, name: 'rating', schemaJson: JSON.stringify(schema), strict: true } },
  });

  it.each([
    ['oai-only', 'gpt-4o', ''],
    ['az-only', 'gpt-4o-eu', ''],
    ['ant-only', 'claude-sonnet-4-6', 'structured output through forced tool "rating"'],
    ['ant-native-only', 'claude-native', ''],
  ])('%s answers JSON that validates against the schema (ajv)', async (route, model, note) => {
    const res = await stack.client.complete(req(route), auth);
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(ajv.validate(schema, JSON.parse(res.content))).toBe(true);
    expect(res.toolCalls).toEqual([]);
    expect(res.attempts.map((a) => a.note)).toEqual([note]);
    const body = (await bodies(model))[0]!;
    if (model === 'claude-sonnet-4-6') expect(body['tool_choice']).toEqual({ type: 'tool', name: 'rating' });
    else if (model === 'claude-native') expect(body['output_config']).toEqual({ format: { type: 'json_schema', schema } });
    else expect(body['response_format']).toEqual({ type: 'json_schema', json_schema: { name: 'rating', schema, strict: true } });
  }, 30_000);
});

/** A real PNG (grey, width×height): signature, IHDR, one IDAT, IEND. */
function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 0;
  const raw = Buffer.alloc((width + 1) * height, 0x80);
  for (let y = 0; y < height; y++) raw[y * (width + 1)] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

describe('images through the router', () => {
  const bytes = png(800, 600);
  const data = bytes.toString('base64');
  const message: MessageInitShape<typeof ChatMessageSchema> = {
    role: Role.USER,
    parts: [
      { part: { case: 'text', value: 'What is in these pictures?' } },
      { part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array(bytes) }, mediaType: 'image/png' } } },
      { part: { case: 'image', value: { source: { case: 'url', value: 'https://example.com/cat.jpg' }, detail: 'high' } } },
    ],
  };

  it.each([
    ['oai-only', 'gpt-4o'],
    ['az-only', 'gpt-4o-eu'],
    ['ant-only', 'claude-sonnet-4-6'],
  ])('%s: the image parts reach the provider in its own shape', async (route, model) => {
    const res = await stack.client.complete({ route, messages: [message], params: { maxTokens: 50 } }, auth);
    expect(res.finishReason).toBe(FinishReason.STOP);
    const content = ((await bodies(model))[0]!['messages'] as { content: unknown }[])[0]!.content;
    if (model.startsWith('claude')) {
      expect(content).toEqual([
        { type: 'text', text: 'What is in these pictures?' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
      ]);
    } else {
      expect(content).toEqual([
        { type: 'text', text: 'What is in these pictures?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${data}` } },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'high' } },
      ]);
    }
  }, 30_000);
});

describe('bad tool input through the router', () => {
  const user: MessageInitShape<typeof ChatMessageSchema> = { role: Role.USER, content: 'Call get_weather for Paris' };
  it.each<[string, { messages?: MessageInitShape<typeof ChatMessageSchema>[]; params?: object }, string]>([
    ['parameters_json that is not JSON', { params: { tools: [{ name: 'f', parametersJson: '{"type":' }] } }, 'params.tools[0].parameters_json'],
    ['a named tool choice not among the tools', { params: { tools: [WEATHER], toolChoice: { mode: ToolChoiceMode.FUNCTION, functionName: 'nope' } } }, 'params.tool_choice.function_name'],
    ['a tool message whose id matches no call', { messages: [user, { role: Role.TOOL, toolCallId: 'call_missing', content: 'x' }] }, 'messages[1].tool_call_id'],
    [
      'tool-call arguments that are not JSON',
      { messages: [user, { role: Role.ASSISTANT, toolCalls: [{ id: 'c1', name: 'get_weather', arguments: 'Paris' }] }, { role: Role.TOOL, toolCallId: 'c1', content: 'x' }] },
      'messages[1].tool_calls[0].arguments',
    ],
  ])('%s is INVALID_ARGUMENT naming the field, and nothing reaches a provider', async (_name, overrides, field) => {
    const err = await stack.client
      .complete({ route: 'tools', messages: overrides.messages ?? [user], params: { maxTokens: 50, ...(overrides.params ?? {}) } } as never, auth)
      .then(() => undefined, (e: unknown) => e);
    const parsed = parseGrpcError(err);
    expect(parsed.code).toBe(status.INVALID_ARGUMENT);
    expect(parsed.details.badRequest?.[0]?.field).toBe(field);
    expect(await stack.sim.counters()).toEqual({});
  });
});

describe('a cached tool-call answer replayed as a stream', () => {
  it('sends each call as one tool-call delta and the calls in the Final', async () => {
    const req = { route: 'oai-cached', messages: [{ role: Role.USER, content: 'Call get_weather and get_time for Oslo' }], params: { maxTokens: 300, tools: [WEATHER, TIME] } };
    const first = await stack.client.complete(req, auth);
    expect(first.finishReason).toBe(FinishReason.TOOL_CALLS);
    let replay = await readStream(req);
    for (let i = 0; i < 20 && replay.final.cacheStatus !== CacheStatus.HIT; i++) replay = await readStream(req); // the store is off the response path
    expect(replay.final.cacheStatus).toBe(CacheStatus.HIT);
    expect(replay.toolDeltas.map((d) => ({ index: d.index, id: d.id, name: d.name, arguments: d.argumentsFragment }))).toEqual(
      first.toolCalls.map((c, index) => ({ index, id: c.id, name: c.name, arguments: c.arguments })),
    );
    expect(plain(replay.final.toolCalls)).toEqual(plain(first.toolCalls));
    expect(replay.final.finishReason).toBe(FinishReason.TOOL_CALLS);
  }, 30_000);
});

describe('route contextOverflow: truncate', () => {
  it('drops the oldest turns for a small window, keeps the system prompt and the tool call with its result, and says so', async () => {
    const filler = (tag: string) => `${tag} `.repeat(150);
    const messages: MessageInitShape<typeof ChatMessageSchema>[] = [
      { role: Role.SYSTEM, content: 'Be brief.' },
      { role: Role.USER, content: filler('old') },
      { role: Role.ASSISTANT, content: filler('older-answer') },
      { role: Role.USER, content: 'Call get_weather for Rome' },
      { role: Role.ASSISTANT, toolCalls: [{ id: 'call_r1', name: 'get_weather', arguments: '{"city":"Rome"}' }] },
      { role: Role.TOOL, toolCallId: 'call_r1', content: '{"temp_c":25}' },
      { role: Role.ASSISTANT, content: 'It is 25 °C in Rome.' },
      { role: Role.USER, content: 'And tomorrow?' },
    ];
    const res = await stack.client.complete({ route: 'small-truncate', messages, params: { maxTokens: 60, tools: [WEATHER] } }, auth);
    expect(res.servedBy?.deployment).toBe('small');
    expect(res.degraded).toBe(true);
    expect(res.degradedReason).toBe('context truncated: the 2 oldest message(s) dropped to fit the context window');
    expect(res.attempts.map((a) => a.note)).toEqual(['dropped the 2 oldest message(s) to fit the context window of 400 tokens']);
    const sent = (await bodies('gpt-small'))[0]!['messages'] as { role: string }[];
    expect(sent.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
    expect(sent[1]).toEqual({ role: 'user', content: 'Call get_weather for Rome' });
  }, 30_000);
});
