import { hashApiKey, parseConfig } from '@switchyard/config';
import { Metadata } from '@switchyard/grpc';
import { create } from '@bufbuild/protobuf';
import { CompleteRequestSchema, Role } from '@switchyard/contracts';
import { estimateRequestTokens } from '@switchyard/providers';
import { ManualClock } from '@switchyard/util';
import type { RouterContext } from '../router-context';
import { cacheKeyFor, prepareCall } from './prepare-call';

const KEY = 'caller-key';
const gateway = parseConfig(
  `
deployments:
  oa1: { provider: openai, baseUrl: "http://127.0.0.1:1/v1", model: m1, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  oa2: { provider: openai, baseUrl: "http://127.0.0.1:1/v1", model: m2, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  az: { provider: azure, baseUrl: "http://127.0.0.1:1", model: m3, apiKey: env:K, apiVersion: "2024-10-21", price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  an: { provider: anthropic, baseUrl: "http://127.0.0.1:1", model: m4, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
routes:
  mixed: { cacheable: false, candidates: [{ deployment: oa1 }, { deployment: an }, { deployment: oa2 }, { deployment: az }] }
  cached: { cacheable: true, candidates: [{ deployment: oa1 }] }
tenants:
  t:
    apiKeys: [{ id: k1, sha256: ${hashApiKey(KEY)} }]
`,
  { env: { K: 'x' } },
);

const ctx = {
  gateway,
  keys: new Map([[hashApiKey(KEY), { tenantId: 't', tenant: gateway.tenants.t!, apiKeyId: 'k1' }]]),
  defaultMaxTokens: 256,
  rng: () => 0.5,
  clock: new ManualClock(1_000_000),
  health: { get: () => undefined },
  quota: { get: () => undefined },
  outcomes: { sharedHealthReachable: () => true },
} as unknown as RouterContext;

const metadata = () => {
  const m = new Metadata();
  m.set('x-api-key', KEY);
  return m;
};
const request = (route: string) =>
  create(CompleteRequestSchema, {
    route,
    messages: [{ role: Role.USER, content: 'Count the tokens of this prompt once per provider kind, please. '.repeat(20) }],
    params: { maxTokens: 64 },
  });

describe('prepareCall', () => {
  it('gives every candidate the prompt estimate of its own provider kind (estimated once per kind)', () => {
    const p = prepareCall(ctx, request('mixed'), metadata(), undefined);
    const expected = (provider: 'openai' | 'azure' | 'anthropic') => estimateRequestTokens(p.call.chat, provider).inputTokens;
    expect(Object.fromEntries(p.inputTokens)).toEqual({ oa1: expected('openai'), oa2: expected('openai'), az: expected('azure'), an: expected('anthropic') });
    // Anthropic counts the same prompt differently, so a shared estimate would show here.
    expect(expected('anthropic')).not.toBe(expected('openai'));
  });

  it('hashes the prompt into a cache key only when the call reads or writes the cache', () => {
    expect(prepareCall(ctx, request('mixed'), metadata(), undefined).cacheKey).toBe('');
    const cached = prepareCall(ctx, request('cached'), metadata(), undefined);
    expect(cached.cacheKey).toBe(cacheKeyFor(cached.call));
    expect(cached.cacheKey).toMatch(/^cached:[0-9a-f]{64}$/);
  });
});
