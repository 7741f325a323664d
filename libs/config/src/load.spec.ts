import { ConfigError } from './errors';
import { parseConfig } from './load';
import { hashApiKey } from './secrets';

const KEY_HASH = hashApiKey('sk-tenant-acme');

const valid = `
deployments:
  gpt4o:
    provider: openai
    baseUrl: \${SIM_URL}/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 100, tpm: 50000 }
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  claude:
    provider: anthropic
    baseUrl: \${SIM_URL}
    model: claude-sonnet-4
    apiKey: env:ANTHROPIC_API_KEY
    price: { inputPerMillionUsd: 3, outputPerMillionUsd: 15 }
routes:
  chat:
    candidates:
      - { deployment: gpt4o }
      - { deployment: claude, priority: 1 }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${KEY_HASH} }]
    budgets: [{ period: day, limitUsd: 5 }]
`;

function problemsOf(text: string, env: Record<string, string> = { SIM_URL: 'http://127.0.0.1:9' }): string[] {
  try {
    parseConfig(text, { env, source: 'test.yaml' });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseConfig', () => {
  it('accepts a valid file and fills every default', () => {
    const config = parseConfig(valid, { env: { SIM_URL: 'http://127.0.0.1:9' } });
    expect(config.deployments.gpt4o.baseUrl).toBe('http://127.0.0.1:9/v1');
    expect(config.deployments.gpt4o.timeoutMs).toBe(30_000);
    expect(config.deployments.claude.limits).toEqual({});
    expect(config.routes.chat.candidates[1]).toEqual({ deployment: 'claude', priority: 1, weight: 1 });
    expect(config.routes.chat.allowStaleOnError).toBe(true);
    expect(config.tenants.acme.budgets[0].hard).toBe(true);
    expect(config.defaults.retry).toEqual({ maxAttempts: 3, baseMs: 1000, capMs: 30000 });
    expect(config.defaults.headroom).toBe(0.8);
    expect(config.defaults.breaker.consecutiveFailures).toBe(5);
  });

  it('names the key path and the problem for a wrong type', () => {
    const problems = problemsOf(valid.replace('rpm: 100', 'rpm: "lots"'));
    expect(problems).toEqual([expect.stringMatching(/^deployments\.gpt4o\.limits\.rpm: .*number/i)]);
  });

  it('rejects unknown keys so typos do not silently fall back to defaults', () => {
    const problems = problemsOf(valid.replace('model: gpt-4o', 'model: gpt-4o\n    timeoutMillis: 5'));
    expect(problems).toEqual([expect.stringMatching(/^deployments\.gpt4o: .*timeoutMillis/)]);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf(valid.replace('provider: openai', 'provider: openia').replace('limitUsd: 5', 'limitUsd: -5'));
    expect(problems).toHaveLength(2);
    expect(problems.join('\n')).toMatch(/deployments\.gpt4o\.provider/);
    expect(problems.join('\n')).toMatch(/tenants\.acme\.budgets\.0\.limitUsd/);
  });

  it('rejects a route that names an unknown deployment', () => {
    expect(problemsOf(valid.replace('- { deployment: claude, priority: 1 }', '- { deployment: gemini }'))).toEqual([
      'routes.chat.candidates.1.deployment: unknown deployment "gemini"',
    ]);
  });

  it('requires apiVersion for azure deployments', () => {
    const problems = problemsOf(valid.replace('provider: openai', 'provider: azure'));
    expect(problems).toEqual(['deployments.gpt4o.apiVersion: is required when provider is azure']);
  });

  it('refuses literal provider keys in the file', () => {
    expect(problemsOf(valid.replace('env:OPENAI_API_KEY', 'sk-live-123'))[0]).toMatch(/^deployments\.gpt4o\.apiKey: must be a reference/);
  });

  it('refuses names that cannot be NATS subject tokens', () => {
    expect(problemsOf(valid.replace('  gpt4o:\n', '  gpt.4o:\n'))[0]).toMatch(/^deployments\.gpt\.4o/);
  });

  it('names an unset environment variable', () => {
    expect(problemsOf(valid, {})).toEqual(['${SIM_URL}: environment variable is not set and has no default']);
  });

  it('rejects one API key shared by two tenants', () => {
    const twoTenants = `${valid}  other:\n    apiKeys: [{ id: other, sha256: ${KEY_HASH} }]\n`;
    expect(problemsOf(twoTenants)).toEqual(['tenants.other.apiKeys.0.sha256: same key already belongs to tenants.acme']);
  });

  it('reports malformed YAML as a problem, not a crash', () => {
    expect(problemsOf('deployments: [\n')[0]).toMatch(/^\(yaml\): /);
  });
});
