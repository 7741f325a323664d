import { useSimulator } from './helpers';

/**
 * The tool-call wire, raw: the exact SSE frames each dialect streams for a
 * tool-call answer (as the providers stream them), and the providers' 400s
 * for malformed tool conversations.
 */

const sim = useSimulator({ scenario: { seed: 3, deployments: { 'gpt-4o': {}, 'claude-haiku-4-5': {} } } });
const weather = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };

async function post(path: string, body: object, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(`${sim.current.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}
const openai = (body: object) => post('/v1/chat/completions', { model: 'gpt-4o', max_tokens: 100, ...body }, { authorization: 'Bearer sk-test' });
const anthropic = (body: object) => post('/v1/messages', { model: 'claude-haiku-4-5', max_tokens: 100, ...body }, { 'x-api-key': 'sk-ant', 'anthropic-version': '2023-06-01' });
const dataFrames = (sse: string) => sse.split('\n\n').filter((f) => f.startsWith('data: {')).map((f) => JSON.parse(f.slice(6)) as Record<string, unknown>);
const events = (sse: string) =>
  sse
    .split('\n\n')
    .filter(Boolean)
    .map((f) => ({ event: /^event: (.*)$/m.exec(f)![1], data: JSON.parse(/^data: (.*)$/m.exec(f)![1]!) as Record<string, unknown> }));

describe('streamed tool calls', () => {
  it('OpenAI: a head chunk per call (index, id, type, name, empty arguments), then argument fragments by index, finish tool_calls', async () => {
    const { status, text } = await openai({
      stream: true,
      messages: [{ role: 'user', content: 'get_weather for Oslo' }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: weather } }],
    });
    expect(status).toBe(200);
    const chunks = dataFrames(text).map((c) => (c['choices'] as { delta: Record<string, unknown>; finish_reason: unknown }[])[0]!);
    expect(chunks[0]!.delta).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [{ index: 0, id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather', arguments: '' } }],
      refusal: null,
    });
    const fragments = chunks.slice(1, -1).map((c) => (c.delta['tool_calls'] as { index: number; function: { arguments: string } }[])[0]!);
    expect(fragments.every((f) => f.index === 0)).toBe(true);
    expect(JSON.parse(fragments.map((f) => f.function.arguments).join(''))).toEqual({ city: expect.any(String) });
    expect(chunks.at(-1)).toMatchObject({ delta: {}, finish_reason: 'tool_calls' });
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('Anthropic: tool_use content_block_start at index 0 (no text block), an empty input_json_delta, fragments, content_block_stop, stop_reason tool_use', async () => {
    const { status, text } = await anthropic({ stream: true, messages: [{ role: 'user', content: 'get_weather for Oslo' }], tools: [{ name: 'get_weather', input_schema: weather }] });
    expect(status).toBe(200);
    const ev = events(text);
    expect(ev.map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      ...Array(ev.length - 6).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(ev[2]!.data).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: expect.stringMatching(/^toolu_01/), name: 'get_weather', input: {} } });
    const deltas = ev.filter((e) => e.event === 'content_block_delta').map((e) => e.data['delta'] as { type: string; partial_json: string });
    expect(deltas[0]).toEqual({ type: 'input_json_delta', partial_json: '' });
    expect(JSON.parse(deltas.map((d) => d.partial_json).join(''))).toEqual({ city: expect.any(String) });
    expect((ev.at(-2)!.data['delta'] as { stop_reason: string }).stop_reason).toBe('tool_use');
  });
});

describe('malformed tool conversations get the providers’ 400s', () => {
  it('OpenAI: a tool message answering no call', async () => {
    const { status, text } = await openai({ messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 'call_1', content: 'r' }] });
    expect(status).toBe(400);
    expect(text).toContain("messages with role 'tool' must be a response to a preceeding message with 'tool_calls'");
  });

  it('OpenAI: parallel_tool_calls without tools', async () => {
    const { status, text } = await openai({ messages: [{ role: 'user', content: 'x' }], parallel_tool_calls: false });
    expect(status).toBe(400);
    expect(text).toContain("'parallel_tool_calls' is only allowed when 'tools' are specified");
  });

  it('Anthropic: a tool_use id outside ^[a-zA-Z0-9_-]+$, and tool blocks without tools', async () => {
    const conversation = (id: string) => [
      { role: 'user', content: 'x' },
      { role: 'assistant', content: [{ type: 'tool_use', id, name: 'get_weather', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: 'r' }] },
    ];
    const bad = await anthropic({ messages: conversation('call:1'), tools: [{ name: 'get_weather', input_schema: weather }] });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'");
    const noTools = await anthropic({ messages: conversation('call_1') });
    expect(noTools.text).toContain('must define tools');
    const ok = await anthropic({ messages: conversation('call_1'), tools: [{ name: 'get_weather', input_schema: weather }] });
    expect(ok.status).toBe(200);
  });

  it('Anthropic: a tool_result whose id is not in the previous assistant turn', async () => {
    const { status, text } = await anthropic({
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: 'r' }] },
      ],
      tools: [{ name: 'get_weather', input_schema: weather }],
    });
    expect(status).toBe(400);
    expect(text).toContain('unexpected `tool_use_id` found in `tool_result` blocks: toolu_2');
  });
});
