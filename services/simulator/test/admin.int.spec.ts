import OpenAI from 'openai';
import { createSimulator, ScenarioError, type DeploymentCounters, type RecordedRequest, type Scenario } from '../src/index';
import { useSimulator } from './helpers';

const messages = [{ role: 'user' as const, content: 'ping' }];

describe('admin API', () => {
  const sim = useSimulator({ scenario: { seed: 3, deployments: { ok: {}, flaky: { faults: { server_error: 0.5 } } } } });
  const admin = (path: string, init?: RequestInit) => fetch(`${sim.current.url}/_admin/${path}`, init);
  const openai = () => new OpenAI({ baseURL: `${sim.current.url}/v1`, apiKey: 'sk-admin-test', maxRetries: 0 });

  beforeEach(async () => {
    expect((await admin('reset', { method: 'POST' })).status).toBe(200);
  });

  it('counts every request received and every answer by status, per deployment', async () => {
    for (let i = 0; i < 20; i++) await openai().chat.completions.create({ model: 'flaky', messages }).catch(() => undefined);
    const answer = await openai().chat.completions.create({ model: 'ok', messages });
    await fetch(`${sim.current.url}/v1/chat/completions`, { method: 'POST', body: '{not json' });
    const counters = (await (await admin('counters')).json()) as Record<string, DeploymentCounters>;
    expect(counters['ok']).toEqual({
      received: 1,
      byStatus: { '200': 1 },
      faults: {},
      usage: { inputTokens: answer.usage!.prompt_tokens, outputTokens: answer.usage!.completion_tokens },
    });
    const flaky = counters['flaky']!;
    expect(flaky.received).toBe(20);
    expect(flaky.byStatus['200']! + flaky.byStatus['500']!).toBe(20);
    expect(flaky.byStatus['500']).toBe(flaky.faults['server_error']);
    expect(flaky.byStatus['500']).toBeGreaterThan(3);
    // Failed answers bill nothing.
    expect(flaky.usage.outputTokens).toBeGreaterThanOrEqual(8 * flaky.byStatus['200']!);
    expect(flaky.usage.outputTokens).toBeLessThanOrEqual(48 * flaky.byStatus['200']!);
    expect(counters['_unknown']).toEqual({ received: 1, byStatus: { '401': 1 }, faults: {}, usage: { inputTokens: 0, outputTokens: 0 } });
  });

  it('keeps the last 100 requests per deployment with headers and body', async () => {
    for (let i = 0; i < 105; i++) await openai().chat.completions.create({ model: 'ok', messages, max_tokens: 10 + i, user: 'tenant-a' });
    const log = (await (await admin('requests?deployment=ok')).json()) as RecordedRequest[];
    expect(log).toHaveLength(100);
    expect(log[0]!.body).toMatchObject({ model: 'ok', max_tokens: 15, user: 'tenant-a', messages });
    expect(log[99]!.body).toMatchObject({ max_tokens: 114 });
    expect(log[99]!.headers.authorization).toBe('Bearer sk-admin-test');
    expect(log[99]!.path).toBe('/v1/chat/completions');
    expect((await admin('requests')).status).toBe(400);
  });

  it('replaces the scenario with PUT (YAML or JSON), and keeps the old one when the new one is invalid', async () => {
    const yaml = 'seed: 9\ndeployments:\n  ok:\n    faults:\n      overloaded: 1\n';
    const put = await admin('scenario', { method: 'PUT', body: yaml, headers: { 'content-type': 'application/yaml' } });
    expect(put.status).toBe(200);
    expect(((await (await admin('scenario')).json()) as Scenario).seed).toBe(9);
    await expect(openai().chat.completions.create({ model: 'ok', messages })).rejects.toMatchObject({ status: 503 });

    const bad = await admin('scenario', { method: 'PUT', body: JSON.stringify({ deployments: { 'gpt-4o': { faults: { rate_limit: 1.5 } } } }) });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: string; problems: string[] };
    expect(body.error).toBe('deployments.gpt-4o.faults.rate_limit: must be between 0 and 1, got 1.5');
    expect(((await (await admin('scenario')).json()) as Scenario).seed).toBe(9);

    const back = await admin('scenario', { method: 'PUT', body: JSON.stringify({ seed: 3, deployments: { ok: {}, flaky: { faults: { server_error: 0.5 } } } }) });
    expect(back.status).toBe(200);
    await expect(openai().chat.completions.create({ model: 'ok', messages })).resolves.toBeDefined();
  });

  it('names unknown admin routes', async () => {
    const res = await admin('nope');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toMatch(/GET\/PUT \/_admin\/scenario/);
  });
});

describe('createSimulator scenario errors', () => {
  it('refuses to start with an invalid scenario, naming the key path', async () => {
    await expect(createSimulator({ scenario: { deployments: { d: { latency: { firstToken: -1 } } } } })).rejects.toThrow(ScenarioError);
    await expect(createSimulator({ scenario: 'deployments:\n  d:\n    bogus: 1\n' })).rejects.toThrow('deployments.d.bogus: unknown key');
  });

  it('setScenario throws and keeps the previous scenario', async () => {
    const sim = await createSimulator({ scenario: { seed: 5 } });
    try {
      expect(() => sim.setScenario({ seed: -1 })).toThrow('seed: must be ≥ 0, got -1');
      expect(sim.getScenario().seed).toBe(5);
    } finally {
      await sim.stop();
    }
  });
});
