import { hashApiKey } from '@switchyard/config';
import { ErrorClass, FinishReason, Role, type CompleteResponse } from '@switchyard/contracts';
import { parseGrpcError, status } from '@switchyard/grpc';
import { sleep } from '@switchyard/util';
import { startStack, type Stack } from '../../services/router/test/stack';

/**
 * Issue 6 proof table: for each error class the simulator produces × provider
 * (OpenAI, Azure OpenAI, Anthropic, through their official SDKs): upstream
 * attempts, deployments tried, final status and the waits the router took.
 * Every route is [faulty primary, healthy backup]; retry settings are small so
 * the table runs in seconds.
 */

const KEY = 'table-key';
const auth = { metadata: { 'x-api-key': KEY } };
const PROVIDERS = ['openai', 'azure', 'anthropic'] as const;
type Provider = (typeof PROVIDERS)[number];

interface Row {
  fault: string;
  errorClass: keyof typeof ErrorClass;
  /** Attempts on the faulty primary. */
  primaryAttempts: number;
  /** Whether the backup answered (else the call ended with `status`). */
  fellBack: boolean;
  status: number;
  /** Backoff waits between primary attempts. */
  waits: number;
  only?: Provider[];
}

const ROWS: Row[] = [
  { fault: 'rate_limit', errorClass: 'RATE_LIMITED', primaryAttempts: 1, fellBack: true, status: status.OK, waits: 0 },
  { fault: 'insufficient_quota', errorClass: 'QUOTA_EXHAUSTED', primaryAttempts: 1, fellBack: true, status: status.OK, waits: 0 },
  { fault: 'spend_limit', errorClass: 'QUOTA_EXHAUSTED', primaryAttempts: 1, fellBack: true, status: status.OK, waits: 0, only: ['anthropic'] },
  { fault: 'server_error', errorClass: 'SERVER_ERROR', primaryAttempts: 3, fellBack: true, status: status.OK, waits: 2 },
  { fault: 'bad_gateway', errorClass: 'SERVER_ERROR', primaryAttempts: 3, fellBack: true, status: status.OK, waits: 2 },
  { fault: 'gateway_timeout', errorClass: 'SERVER_ERROR', primaryAttempts: 3, fellBack: true, status: status.OK, waits: 2 },
  { fault: 'unavailable', errorClass: 'OVERLOADED', primaryAttempts: 3, fellBack: true, status: status.OK, waits: 2 },
  { fault: 'overloaded', errorClass: 'OVERLOADED', primaryAttempts: 3, fellBack: true, status: status.OK, waits: 2 },
  { fault: 'hang', errorClass: 'TIMEOUT', primaryAttempts: 3, fellBack: true, status: status.OK, waits: 2 },
  { fault: 'reset', errorClass: 'NETWORK', primaryAttempts: 3, fellBack: true, status: status.OK, waits: 2 },
  { fault: 'context_length', errorClass: 'CONTEXT_LENGTH', primaryAttempts: 1, fellBack: true, status: status.OK, waits: 0 },
  { fault: 'content_policy', errorClass: 'CONTENT_FILTER', primaryAttempts: 1, fellBack: false, status: status.INVALID_ARGUMENT, waits: 0 },
  { fault: 'unauthorized', errorClass: 'AUTH', primaryAttempts: 1, fellBack: true, status: status.OK, waits: 0 },
  { fault: 'forbidden', errorClass: 'AUTH', primaryAttempts: 1, fellBack: true, status: status.OK, waits: 0 },
  { fault: 'not_found', errorClass: 'INVALID_REQUEST', primaryAttempts: 1, fellBack: false, status: status.INVALID_ARGUMENT, waits: 0 },
  { fault: 'too_large', errorClass: 'INVALID_REQUEST', primaryAttempts: 1, fellBack: false, status: status.INVALID_ARGUMENT, waits: 0 },
];

const name = (p: Provider, fault: string) => `${p}-${fault.replace(/_/g, '-')}`;

function deploymentYaml(sim: string, p: Provider, id: string, model: string, extra = ''): string {
  const base = p === 'openai' ? `${sim}/v1` : sim;
  const version = p === 'azure' ? '\n    apiVersion: 2024-10-21' : '';
  return `  ${id}:
    provider: ${p}
    baseUrl: ${base}
    model: ${model}${version}
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }${extra}
`;
}

function gatewayYaml(sim: string): string {
  let deployments = '';
  let routes = '';
  for (const p of PROVIDERS) {
    deployments += deploymentYaml(sim, p, `${p}-backup`, `${p}-backup-m`);
    for (const row of ROWS.filter((r) => !r.only || r.only.includes(p))) {
      const id = name(p, row.fault);
      deployments += deploymentYaml(sim, p, id, `${id}-m`, '\n    contextWindow: 8000\n    timeoutMs: 300');
      routes += `  r-${id}: { cacheable: false, candidates: [{ deployment: ${id} }, { deployment: ${p}-backup, priority: 1 }] }\n`;
    }
  }
  deployments += deploymentYaml(sim, 'openai', 'xp-openai', 'xp-openai-m');
  deployments += deploymentYaml(sim, 'anthropic', 'xp-anthropic', 'xp-anthropic-m');
  routes += '  r-xp: { cacheable: false, candidates: [{ deployment: xp-openai }, { deployment: xp-anthropic, priority: 1 }] }\n';
  return `deployments:
${deployments}routes:
${routes}tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 3, baseMs: 20, capMs: 100 }
`;
}

function scenario(overrides: Record<string, object> = {}) {
  const deployments: Record<string, object> = {};
  for (const p of PROVIDERS) {
    deployments[`${p}-backup-m`] = {};
    for (const row of ROWS) deployments[`${name(p, row.fault)}-m`] = { faults: { [row.fault]: 1 }, retryAfterMs: 30 };
  }
  deployments['xp-openai-m'] = {};
  deployments['xp-anthropic-m'] = {};
  return { seed: 3, defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } }, deployments: { ...deployments, ...overrides } };
}

describe('error class × provider table (simulator, official SDKs, real peers)', () => {
  let stack: Stack;
  const waits: number[] = [];
  let client: Stack['client'];

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario(), { RETRY_BUDGET_PERCENT: '1000' });
    // A replica whose backoff waits are recorded (the real sleep, observed).
    ({ client } = await stack.startRouter({}, { sleep: (ms, signal) => (waits.push(ms), sleep(ms, signal)) }));
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  const cases = PROVIDERS.flatMap((provider) => ROWS.filter((r) => !r.only || r.only.includes(provider)).map((row) => ({ provider, ...row })));

  it.each(cases)('$provider $fault → $errorClass: $primaryAttempts attempt(s) on the primary, fallback $fellBack, status $status', async (row) => {
    waits.length = 0;
    const id = name(row.provider, row.fault);
    const before = await stack.sim.counters();
    let res: CompleteResponse | undefined;
    let code: number = status.OK;
    let attempts: { deployment: string; errorClass: number }[] = [];
    try {
      res = await client.complete({ route: `r-${id}`, messages: [{ role: Role.USER, content: `table ${id}` }], params: { maxTokens: 16 } }, auth);
      attempts = res.attempts.map((a) => ({ deployment: a.deployment!.deployment, errorClass: a.errorClass }));
    } catch (err) {
      const parsed = parseGrpcError(err);
      code = parsed.code;
      // ErrorInfo metadata lists every attempt: attempt_N = "deployment=… class=… …".
      const meta = parsed.details.errorInfo?.metadata ?? {};
      attempts = Array.from({ length: Number(meta.attempts ?? 0) }, (_, i) => {
        const fields = Object.fromEntries((meta[`attempt_${i + 1}`] ?? '').split(' ').map((kv) => kv.split('=') as [string, string]));
        return { deployment: fields.deployment ?? '', errorClass: ErrorClass[fields.class as keyof typeof ErrorClass] ?? -1 };
      });
      expect(attempts.map((a) => a.deployment)).toEqual(Array<string>(row.primaryAttempts).fill(id));
      expect(attempts.every((a) => a.errorClass === ErrorClass[row.errorClass])).toBe(true);
    }
    const after = await stack.sim.counters();
    const received = (m: string) => (after[m]?.received ?? 0) - (before[m]?.received ?? 0);

    expect(code).toBe(row.status);
    // Counted at the simulator: what really went upstream.
    expect(received(`${id}-m`)).toBe(row.primaryAttempts);
    expect(received(`${row.provider}-backup-m`)).toBe(row.fellBack ? 1 : 0);
    if (res) {
      expect(attempts.map((a) => a.deployment)).toEqual([...Array<string>(row.primaryAttempts).fill(id), ...(row.fellBack ? [`${row.provider}-backup`] : [])]);
      expect(attempts.filter((a) => a.deployment === id).every((a) => a.errorClass === ErrorClass[row.errorClass])).toBe(true);
      expect(res.servedBy!.provider).toBe(row.provider);
    }
    expect(waits).toHaveLength(row.waits);
    for (const w of waits) expect(w).toBeLessThanOrEqual(100);
  });

  it('cross-provider failover: OpenAI, then (primary down) Anthropic, give equivalent neutral answers from exactly translated parameters', async () => {
    const req = {
      route: 'r-xp',
      messages: [
        { role: Role.SYSTEM, content: 'You are terse.' },
        { role: Role.USER, content: 'Name a colour.' },
      ],
      params: { maxTokens: 40, temperature: 0.3, topP: 0.9, stop: ['END'] },
    };
    const fromOpenAi = await client.complete(req, auth);
    await stack.sim.setScenario(scenario({ 'xp-openai-m': { faults: { unavailable: 1 } } }));
    const fromAnthropic = await client.complete(req, auth);
    await stack.sim.setScenario(scenario());

    expect(fromOpenAi.servedBy).toMatchObject({ provider: 'openai', deployment: 'xp-openai' });
    expect(fromAnthropic.servedBy).toMatchObject({ provider: 'anthropic', deployment: 'xp-anthropic' });
    for (const r of [fromOpenAi, fromAnthropic]) {
      expect(r.content.length).toBeGreaterThan(0);
      expect(r.finishReason).toBe(FinishReason.STOP);
      expect(r.usage!.inputTokens).toBeGreaterThan(0);
      expect(r.usage!.outputTokens).toBeGreaterThan(0);
      expect(r.costMicros).toBeGreaterThan(0n);
    }
    expect(fromAnthropic.attempts.map((a) => a.deployment!.deployment)).toEqual(['xp-openai', 'xp-openai', 'xp-openai', 'xp-anthropic']);

    const openaiBody = (await stack.sim.requests('xp-openai-m')).at(-1)!.body as Record<string, unknown>;
    const anthropicBody = (await stack.sim.requests('xp-anthropic-m')).at(-1)!.body as Record<string, unknown>;
    if (process.env.PRINT_BODIES) console.log(JSON.stringify({ openaiBody, anthropicBody }, null, 1));
    expect(openaiBody).toMatchObject({
      model: 'xp-openai-m',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Name a colour.' },
      ],
      temperature: 0.3,
      top_p: 0.9,
      stop: ['END'],
    });
    expect(openaiBody.max_completion_tokens ?? openaiBody.max_tokens).toBe(40);
    expect(anthropicBody).toEqual({
      model: 'xp-anthropic-m',
      system: 'You are terse.',
      messages: [{ role: 'user', content: 'Name a colour.' }],
      max_tokens: 40,
      temperature: 0.3,
      top_p: 0.9,
      stop_sequences: ['END'],
    });
  });
});
