import { crc32, deflateSync } from 'node:zlib';
import Ajv from 'ajv';
import { spawnSimulator, type SimulatorHandle } from '@switchyard/testing';
import {
  countRequestInputTokens,
  createProviderAdapter,
  ProviderError,
  type ChatMessage,
  type ChatRequest,
  type ProviderAdapter,
  type ProviderKind,
  type ToolDefinition,
} from '../src';
import { DEPLOYMENT, deploymentFor, drain } from './fixtures';

/**
 * Tools, structured output and images through the real SDKs against the
 * simulator, asserting what each provider received on the wire (the
 * simulator records every request body) and what came back.
 */

const WEATHER: ToolDefinition = {
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
};
const TIME: ToolDefinition = {
  name: 'get_time',
  description: 'Local time in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, hour24: { type: 'boolean' } }, required: ['city', 'hour24'], additionalProperties: false },
};
const KINDS: ProviderKind[] = ['openai', 'azure', 'anthropic'];

let sim: SimulatorHandle;
const adapters = {} as Record<ProviderKind, ProviderAdapter>;
let anthropicNative: ProviderAdapter;
const ajv = new Ajv({ strict: false });

function scenario(faults: Partial<Record<ProviderKind, object>> = {}) {
  const deployments: Record<string, object> = {};
  for (const k of KINDS) deployments[DEPLOYMENT[k]] = { faults: faults[k] ?? {} };
  return { seed: 7, deployments };
}

async function bodies(provider: ProviderKind): Promise<Record<string, unknown>[]> {
  return (await sim.requests(DEPLOYMENT[provider])).map((r) => r.body as Record<string, unknown>);
}
const lastBody = async (provider: ProviderKind) => (await bodies(provider)).at(-1)!;

beforeAll(async () => {
  sim = await spawnSimulator();
  for (const k of KINDS) adapters[k] = createProviderAdapter(deploymentFor(k, sim.url));
  anthropicNative = createProviderAdapter({ ...deploymentFor('anthropic', sim.url), nativeJsonSchema: true });
});

afterAll(async () => {
  await sim?.stop();
});

beforeEach(async () => {
  await sim.setScenario(scenario());
  await sim.reset();
});

describe('a tool conversation that changes provider half-way', () => {
  it('user → tool call on OpenAI; OpenAI fails on the second turn, Anthropic finishes; back to OpenAI; every id consistent on each wire', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Use tools when asked.' },
      { role: 'user', content: 'Call get_weather for Paris' },
    ];
    const turn1 = await adapters.openai.complete({ messages, maxTokens: 200, tools: [WEATHER], toolChoice: 'auto' });
    expect(turn1.finishReason).toBe('tool_calls');
    expect(turn1.toolCalls).toHaveLength(1);
    const call = turn1.toolCalls![0]!;
    expect(call).toEqual({ id: expect.stringMatching(/^call_[A-Za-z0-9]+$/), name: 'get_weather', arguments: expect.any(String) });
    expect(ajv.validate(WEATHER.parameters, JSON.parse(call.arguments))).toBe(true);
    expect(await lastBody('openai')).toEqual({
      model: DEPLOYMENT.openai,
      messages: [
        { role: 'system', content: 'Use tools when asked.' },
        { role: 'user', content: 'Call get_weather for Paris' },
      ],
      max_completion_tokens: 200,
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: WEATHER.parameters } }],
      tool_choice: 'auto',
    });

    // Turn 2: the caller sends the call and its result; OpenAI is down, so the conversation continues on Anthropic.
    messages.push({ role: 'assistant', content: '', toolCalls: [call] }, { role: 'tool', toolCallId: call.id, content: '{"temp_c":18}' });
    await sim.setScenario(scenario({ openai: { server_error: 1 } }));
    const failed = await adapters.openai.complete({ messages, maxTokens: 200, tools: [WEATHER] }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ProviderError);
    expect((failed as ProviderError).classification.errorClass).toBe('SERVER_ERROR');
    expect((await lastBody('openai'))['messages']).toEqual([
      { role: 'system', content: 'Use tools when asked.' },
      { role: 'user', content: 'Call get_weather for Paris' },
      { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: call.arguments } }] },
      { role: 'tool', tool_call_id: call.id, content: '{"temp_c":18}' },
    ]);

    const turn2 = await adapters.anthropic.complete({ messages, maxTokens: 200, tools: [WEATHER] });
    expect(turn2.finishReason).toBe('stop');
    expect(turn2.content.length).toBeGreaterThan(0);
    expect(await lastBody('anthropic')).toEqual({
      model: DEPLOYMENT.anthropic,
      max_tokens: 200,
      system: 'Use tools when asked.',
      messages: [
        { role: 'user', content: 'Call get_weather for Paris' },
        { role: 'assistant', content: [{ type: 'tool_use', id: call.id, name: 'get_weather', input: JSON.parse(call.arguments) }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '{"temp_c":18}' }] },
      ],
      tools: [{ name: 'get_weather', description: 'Current weather for a city', input_schema: WEATHER.parameters }],
    });

    // Turn 3 on Anthropic makes a call with a toolu_ id; turn 4 goes back to OpenAI carrying both providers' ids.
    messages.push({ role: 'assistant', content: turn2.content }, { role: 'user', content: 'Now get_weather for Oslo' });
    const turn3 = await adapters.anthropic.complete({ messages, maxTokens: 200, tools: [WEATHER] });
    const call3 = turn3.toolCalls![0]!;
    expect(call3.id).toMatch(/^toolu_01/);
    expect(turn3.finishReason).toBe('tool_calls');
    messages.push({ role: 'assistant', content: '', toolCalls: [call3] }, { role: 'tool', toolCallId: call3.id, content: '{"temp_c":4}' });
    await sim.setScenario(scenario());
    const turn4 = await adapters.openai.complete({ messages, maxTokens: 200, tools: [WEATHER] });
    expect(turn4.finishReason).toBe('stop');
    const wire = (await lastBody('openai'))['messages'] as { tool_calls?: { id: string }[]; tool_call_id?: string }[];
    expect(wire.flatMap((m) => m.tool_calls?.map((c) => c.id) ?? [])).toEqual([call.id, call3.id]);
    expect(wire.flatMap((m) => (m.tool_call_id ? [m.tool_call_id] : []))).toEqual([call.id, call3.id]);
  });

  it('an id outside Anthropic’s alphabet is mapped on the Anthropic wire (tool_use and tool_result alike) and the simulator accepts it', async () => {
    const odd = 'call:42/odd id';
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Call get_weather for Rome' },
      { role: 'assistant', content: '', toolCalls: [{ id: odd, name: 'get_weather', arguments: '{"city":"Rome"}' }] },
      { role: 'tool', toolCallId: odd, content: 'sunny' },
    ];
    const res = await adapters.anthropic.complete({ messages, maxTokens: 100, tools: [WEATHER] });
    expect(res.finishReason).toBe('stop');
    const body = await lastBody('anthropic');
    const wireMessages = body['messages'] as { content: { id?: string; tool_use_id?: string }[] }[];
    const mapped = wireMessages[1]!.content[0]!.id!;
    expect(mapped).toMatch(/^[a-zA-Z0-9_-]+$/);
    expect(wireMessages[2]!.content[0]!.tool_use_id).toBe(mapped);
    // On OpenAI the caller's id goes as is.
    await adapters.openai.complete({ messages, maxTokens: 100, tools: [WEATHER] });
    expect(((await lastBody('openai'))['messages'] as { tool_call_id?: string }[])[2]!.tool_call_id).toBe(odd);
  });
});

describe('parallel tool calls, streamed', () => {
  const req: ChatRequest = { messages: [{ role: 'user', content: 'Call get_weather and get_time for Lisbon' }], maxTokens: 300, tools: [WEATHER, TIME] };

  it('assemble identically from both dialects (and Azure), and equal the non-streamed calls', async () => {
    const assembled: Record<string, { name: string; arguments: string }[]> = {};
    for (const k of KINDS) {
      const out = await drain(adapters[k].stream(req));
      expect(out.error).toBeUndefined();
      expect(out.end?.finishReason).toBe('tool_calls');
      const calls = out.end!.toolCalls!;
      expect(calls.map((c) => c.name)).toEqual(['get_weather', 'get_time']);
      // The deltas: each call opens with index, id and name, then argument fragments that concatenate to the arguments.
      for (const [i, c] of calls.entries()) {
        const pieces = out.toolDeltas!.filter((d) => d.index === i);
        expect(pieces[0]).toMatchObject({ index: i, id: c.id, name: c.name });
        expect(pieces.length).toBeGreaterThan(2);
        expect(pieces.map((d) => d.argumentsDelta).join('')).toBe(c.arguments);
      }
      expect(ajv.validate(TIME.parameters, JSON.parse(calls[1]!.arguments))).toBe(true);
      const whole = await adapters[k].complete(req);
      expect(whole.toolCalls!.map(({ name, arguments: a }) => ({ name, arguments: a }))).toEqual(calls.map(({ name, arguments: a }) => ({ name, arguments: a })));
      assembled[k] = calls.map(({ name, arguments: a }) => ({ name, arguments: a }));
    }
    expect(assembled['anthropic']).toEqual(assembled['openai']);
    expect(assembled['azure']).toEqual(assembled['openai']);
  });

  it.each(['openai', 'anthropic'] as const)('%s: a stream cut inside a tool call fails as STREAM_INTERRUPTED, after the pieces that arrived', async (k) => {
    await sim.setScenario({ seed: 7, deployments: { [DEPLOYMENT[k]]: { cutAfterChunks: 3 } } });
    const out = await drain(adapters[k].stream(req));
    expect((out.error as ProviderError).classification.errorClass).toBe('STREAM_INTERRUPTED');
    expect(out.toolDeltas!.length).toBeGreaterThan(0);
    expect(out.end).toBeUndefined();
  });

  it.each([
    ['content_filter', 'CONTENT_FILTER'],
    ['rate_limit', 'RATE_LIMITED'],
    ['overloaded', 'OVERLOADED'],
  ])('faults stay injectable with tools offered: %s → %s on both dialects, complete and stream', async (fault, errorClass) => {
    for (const k of ['openai', 'anthropic'] as const) {
      await sim.setScenario({ seed: 7, deployments: { [DEPLOYMENT[k]]: { faults: { [fault]: 1 } } } });
      const err = await adapters[k].complete(req).catch((e: unknown) => e);
      expect((err as ProviderError).classification.errorClass).toBe(errorClass);
      const out = await drain(adapters[k].stream(req));
      expect((out.error as ProviderError).classification.errorClass).toBe(errorClass);
      expect(out.end).toBeUndefined();
      // A filtered answer is cut before any tool call: the filter never lets calls through.
      expect(out.toolDeltas).toBeUndefined();
    }
  });

  it('parallel calls off: one call, sent as parallel_tool_calls false / disable_parallel_tool_use', async () => {
    for (const k of ['openai', 'anthropic'] as const) {
      const res = await adapters[k].complete({ ...req, parallelToolCalls: false });
      expect(res.toolCalls!.map((c) => c.name)).toEqual(['get_weather']);
    }
    expect((await lastBody('openai'))['parallel_tool_calls']).toBe(false);
    expect((await lastBody('anthropic'))['tool_choice']).toEqual({ type: 'auto', disable_parallel_tool_use: true });
  });
});

describe('structured output (json_schema)', () => {
  const schema = {
    type: 'object',
    properties: { city: { type: 'string' }, rating: { type: 'integer', minimum: 1, maximum: 5 }, tags: { type: 'array', items: { type: 'string' } } },
    required: ['city', 'rating', 'tags'],
    additionalProperties: false,
  };
  const req: ChatRequest = { messages: [{ role: 'user', content: 'Rate Vienna as a city' }], maxTokens: 300, responseFormat: { type: 'json_schema', name: 'rating', schema, strict: true } };

  const cases: [string, () => ProviderAdapter, ProviderKind][] = [
    ['openai', () => adapters.openai, 'openai'],
    ['azure', () => adapters.azure, 'azure'],
    ['anthropic, native output_config', () => anthropicNative, 'anthropic'],
    ['anthropic, forced tool', () => adapters.anthropic, 'anthropic'],
  ];

  it.each(cases)('%s: complete and stream answer JSON valid against the schema', async (_label, adapter, kind) => {
    const res = await adapter().complete(req);
    expect(res.finishReason).toBe('stop');
    expect(res.toolCalls).toBeUndefined();
    expect(ajv.validate(schema, JSON.parse(res.content))).toBe(true);
    const streamed = await drain(adapter().stream(req));
    expect(streamed.end?.finishReason).toBe('stop');
    expect(streamed.end?.toolCalls).toBeUndefined();
    expect(ajv.validate(schema, JSON.parse(streamed.deltas.join('')))).toBe(true);
    const body = await lastBody(kind);
    if (kind !== 'anthropic') expect(body['response_format']).toEqual({ type: 'json_schema', json_schema: { name: 'rating', schema, strict: true } });
    else if (adapter() === anthropicNative) {
      expect(body['output_config']).toEqual({ format: { type: 'json_schema', schema } });
      expect(body['tools']).toBeUndefined();
    } else {
      expect(body['tools']).toEqual([{ name: 'rating', description: "Give the answer as this tool's input.", input_schema: schema }]);
      expect(body['tool_choice']).toEqual({ type: 'tool', name: 'rating' });
    }
  });
});

/** A real PNG (grey, width×height) built with zlib: signature, IHDR, one IDAT, IEND. */
function png(width: number, height: number): string {
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
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const raw = Buffer.alloc((width + 1) * height, 0x80);
  for (let y = 0; y < height; y++) raw[y * (width + 1)] = 0; // filter byte per row
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]).toString('base64');
}

describe('images', () => {
  const data = png(800, 600);
  const req: ChatRequest = {
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in these pictures?' },
          { type: 'image', source: { kind: 'base64', mediaType: 'image/png', data } },
          { type: 'image', source: { kind: 'url', url: 'https://example.com/cat.jpg' }, detail: 'high' },
        ],
      },
    ],
    maxTokens: 50,
  };

  it.each(KINDS)('%s receives them in its own shape; the estimate bounds what the simulator charges', async (kind) => {
    const res = await adapters[kind].complete(req);
    const body = await lastBody(kind);
    const content = (body['messages'] as { content: unknown }[])[0]!.content;
    if (kind === 'anthropic') {
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
    // The documented bound: estimate ≥ charge, and the gap is only the unknown-size URL image
    // (estimated at the provider's maximum, billed by the simulator as 1024×1024).
    const estimate = countRequestInputTokens(req, kind);
    const gap = kind === 'anthropic' ? 1600 - Math.ceil((1024 * 1024) / 750) : 1445 - 765;
    expect(res.usage.inputTokens).toBeLessThanOrEqual(estimate);
    expect(estimate - res.usage.inputTokens).toBeLessThanOrEqual(gap);
    expect(estimate - res.usage.inputTokens).toBeGreaterThanOrEqual(gap - 2);
  });
});
