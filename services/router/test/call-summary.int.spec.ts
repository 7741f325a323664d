import { hashApiKey } from '@switchyard/config';
import { Role } from '@switchyard/contracts';
import { parseGrpcError, status } from '@switchyard/grpc';
import { metricsRegistry } from '@switchyard/telemetry';
import { startStack, type Stack } from './stack';

/**
 * Issue 14: one summary line per call whatever its outcome, and the router's
 * Prometheus series, through the production wiring against real peers and the
 * simulator (official SDKs).
 */
const KEY = 'summary-key';
const auth = { metadata: { 'x-api-key': KEY } };

const deployment = (sim: string, id: string, model: string) => `  ${id}:
    provider: openai
    baseUrl: ${sim}/v1
    model: ${model}
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }
`;

const gatewayYaml = (sim: string) => `deployments:
${deployment(sim, 'sum-ok', 'sum-ok-m')}${deployment(sim, 'sum-down', 'sum-down-m')}routes:
  sum-chat: { candidates: [{ deployment: sum-ok }] }
  sum-fail: { cacheable: false, allowStaleOnError: false, candidates: [{ deployment: sum-down }] }
  sum-fallback: { cacheable: false, candidates: [{ deployment: sum-down }, { deployment: sum-ok, priority: 1 }] }
tenants:
  sumco:
    apiKeys: [{ id: sumco-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 3, baseMs: 10, capMs: 20 }
`;

const scenario = { seed: 5, defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } }, deployments: { 'sum-ok-m': {}, 'sum-down-m': { faults: { server_error: 1 } } } };

/** The value of one series in the process registry's exposition, 0 when absent. */
async function series(name: string, labels: Record<string, string>): Promise<number> {
  const text = await metricsRegistry().metrics();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('router call summary line and metrics', () => {
  let stack: Stack;
  let client: Stack['client'];
  const lines: Record<string, unknown>[] = [];
  const capture = { info: (o: object) => lines.push(o as Record<string, unknown>), warn() {}, error() {} };
  const callLines = () => lines.filter((l) => l.event === 'call');

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario, { RETRY_BUDGET_PERCENT: '1000' });
    ({ client } = await stack.startRouter({}, { logger: capture }));
  }, 60_000);
  afterAll(() => stack?.stop(), 60_000);
  beforeEach(() => (lines.length = 0));

  const ask = (route: string, content: string, extra: object = {}) =>
    client.complete({ route, messages: [{ role: Role.USER, content }], params: { maxTokens: 16 }, ...extra }, auth);

  it('a served call: one line with every essential field, and attempt lines carry HTTP 200', async () => {
    const before = await series('switchyard_router_calls_total', { route: 'sum-chat', tenant: 'sumco', grpc_status: 'OK', cache_status: 'miss' });
    const res = await ask('sum-chat', 'summary please', { feature: 'search', userId: 'user-7' });
    expect(callLines()).toHaveLength(1);
    const line = callLines()[0]!;
    expect(line).toMatchObject({
      event: 'call',
      rpc: 'Complete',
      request_id: res.requestId,
      tenant: 'sumco',
      api_key_id: 'sumco-main',
      feature: 'search',
      user_id: 'user-7',
      route: 'sum-chat',
      provider: 'openai',
      model: 'sum-ok-m',
      deployment: 'sum-ok',
      status: 'OK',
      attempts: 1,
      prompt_tokens: res.usage!.inputTokens,
      completion_tokens: res.usage!.outputTokens,
      cost_micros: Number(res.costMicros),
      cache_status: 'miss',
      degraded: false,
    });
    expect(line.latency_ms).toEqual(expect.any(Number));
    expect(line.estimated_cost_micros).toBeGreaterThanOrEqual(Number(res.costMicros));
    expect(JSON.stringify(line)).not.toContain('summary please');
    expect(lines.find((l) => l.event === 'attempt')).toMatchObject({ status: 200, deployment: 'sum-ok' });
    expect(await series('switchyard_router_calls_total', { route: 'sum-chat', tenant: 'sumco', grpc_status: 'OK', cache_status: 'miss' })).toBe(before + 1);
    expect(await series('switchyard_router_tokens_total', { tenant: 'sumco', feature: 'search', deployment: 'sum-ok', type: 'output' })).toBeGreaterThan(0);
    expect(await series('gen_ai_client_token_usage_count', { gen_ai_token_type: 'input', gen_ai_provider_name: 'openai', gen_ai_request_model: 'sum-ok-m' })).toBeGreaterThan(0);
    expect(await series('switchyard_router_cost_usd_total', { tenant: 'sumco', feature: 'search', deployment: 'sum-ok' })).toBeCloseTo(Number(res.costMicros) / 1e6, 9);
  });

  it('a cache hit writes its line too, and counts what the cache saved', async () => {
    await ask('sum-chat', 'cache me');
    lines.length = 0;
    const res = await ask('sum-chat', 'cache me');
    expect(callLines()).toEqual([expect.objectContaining({ status: 'OK', cache_status: 'hit', attempts: 0, cost_micros: 0, request_id: res.requestId })]);
    expect(await series('switchyard_router_calls_total', { route: 'sum-chat', grpc_status: 'OK', cache_status: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(await series('switchyard_router_cache_saved_usd_total', { tenant: 'sumco' })).toBeGreaterThan(0);
  });

  it('a final failure: status, error class and every attempt on the line; attempts counted by error class', async () => {
    const before = await series('switchyard_router_attempts_total', { deployment: 'sum-down', provider: 'openai', error_class: 'SERVER_ERROR' });
    const err = await ask('sum-fail', 'fail').catch((e: unknown) => e);
    expect(parseGrpcError(err).code).toBe(status.UNAVAILABLE);
    expect(callLines()).toEqual([expect.objectContaining({ route: 'sum-fail', status: 'UNAVAILABLE', error_class: 'SERVER_ERROR', attempts: 3, cache_status: 'bypass', cost_micros: 0 })]);
    expect(await series('switchyard_router_attempts_total', { deployment: 'sum-down', provider: 'openai', error_class: 'SERVER_ERROR' })).toBe(before + 3);
    expect(await series('switchyard_router_calls_total', { route: 'sum-fail', grpc_status: 'UNAVAILABLE' })).toBeGreaterThanOrEqual(1);
  });

  it('a fallback: retries on the failing deployment and one fallback by its error class', async () => {
    const retries = await series('switchyard_router_retries_total', { deployment: 'sum-down' });
    const fallbacks = await series('switchyard_router_fallbacks_total', { reason: 'SERVER_ERROR' });
    const res = await ask('sum-fallback', 'fall back');
    expect(res.servedBy?.deployment).toBe('sum-ok');
    const onDown = res.attempts.filter((a) => a.deployment?.deployment === 'sum-down').length;
    expect(onDown).toBeGreaterThanOrEqual(1);
    expect(await series('switchyard_router_retries_total', { deployment: 'sum-down' })).toBe(retries + onDown - 1);
    expect(await series('switchyard_router_fallbacks_total', { reason: 'SERVER_ERROR' })).toBe(fallbacks + 1);
    expect(callLines()[0]).toMatchObject({ deployment: 'sum-ok', attempts: onDown + 1, status: 'OK' });
  });

  it('a validation error: a line with the route as asked, counted under route "unknown" (no caller-grown series)', async () => {
    const before = await series('switchyard_router_calls_total', { route: 'unknown', grpc_status: 'INVALID_ARGUMENT' });
    const err = await ask('no-such-route', 'x').catch((e: unknown) => e);
    expect(parseGrpcError(err).code).toBe(status.INVALID_ARGUMENT);
    expect(callLines()).toEqual([expect.objectContaining({ route: 'no-such-route', status: 'INVALID_ARGUMENT', attempts: 0, request_id: expect.any(String) })]);
    expect(await series('switchyard_router_calls_total', { route: 'unknown', grpc_status: 'INVALID_ARGUMENT' })).toBe(before + 1);
    expect(await series('switchyard_router_calls_total', { route: 'no-such-route' })).toBe(0);
  });

  it('times every peer hop by peer and method', async () => {
    expect(await series('switchyard_router_peer_duration_seconds_count', { peer: 'budget', method: 'reserve' })).toBeGreaterThan(0);
    expect(await series('switchyard_router_dependency_fallback_active', { peer: 'nats' })).toBe(0);
  });
});
