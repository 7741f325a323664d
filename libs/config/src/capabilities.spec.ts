import { ConfigError } from './errors';
import { parseConfig } from './load';

const config = (capabilities: string) => `
deployments:
  claude:
    provider: anthropic
    baseUrl: http://127.0.0.1:9
    model: claude-sonnet-4
    apiKey: env:ANTHROPIC_API_KEY
    price: { inputPerMillionUsd: 3, outputPerMillionUsd: 15 }
    ${capabilities}
routes:
  chat:
    candidates: [{ deployment: claude }]
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${'a'.repeat(64)} }]
`;

describe('deployments.<id>.capabilities', () => {
  it('is optional: unset means the provider defaults (resolved by @switchyard/providers)', () => {
    expect(parseConfig(config('')).deployments['claude']!.capabilities).toBeUndefined();
  });

  it('takes tools, images, jsonSchema and maxOutputTokens', () => {
    const caps = parseConfig(config('capabilities: { tools: true, images: false, jsonSchema: true, maxOutputTokens: 8192 }')).deployments['claude']!.capabilities;
    expect(caps).toEqual({ tools: true, images: false, jsonSchema: true, maxOutputTokens: 8192 });
  });

  it.each([
    ['capabilities: { vision: true }', 'deployments.claude.capabilities'],
    ['capabilities: { tools: "yes" }', 'deployments.claude.capabilities.tools'],
    ['capabilities: { maxOutputTokens: 0 }', 'deployments.claude.capabilities.maxOutputTokens'],
  ])('rejects %s naming the key', (line, key) => {
    let problems: string[] = [];
    try {
      parseConfig(config(line));
    } catch (err) {
      if (err instanceof ConfigError) problems = err.problems;
    }
    expect(problems.some((p) => p.startsWith(key))).toBe(true);
  });
});
