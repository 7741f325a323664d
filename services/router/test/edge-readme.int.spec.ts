import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hashApiKey } from '@switchyard/config';
import { startStack, type Stack } from './stack';

/**
 * The README's HTTP edge curl examples work as printed: each block between
 * the edge-curl-examples markers runs in bash against a real stack (only the
 * port, 8080 in print, is this stack's free port).
 */

const run = promisify(execFile);
const README = join(__dirname, '../../../README.md');

function examples(): string[] {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('<!-- edge-curl-examples');
  const end = text.indexOf('<!-- /edge-curl-examples -->');
  if (start < 0 || end < start) throw new Error('README: edge-curl-examples markers not found');
  return [...text.slice(start, end).matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const gatewayYaml = (sim: string) => `
deployments:
  fast:
    provider: openai
    baseUrl: ${sim}/v1
    model: fast-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }
routes:
  chat: { candidates: [{ deployment: fast }] }
tenants:
  demo:
    apiKeys: [{ id: demo, sha256: ${hashApiKey('sk-switchyard-demo')} }]
`;

describe('README HTTP edge examples', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, { seed: 1 });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('there are four, and each answers as described', async () => {
    const blocks = examples();
    expect(blocks).toHaveLength(4);
    const outputs: string[] = [];
    for (const block of blocks) {
      const script = block.replaceAll('http://127.0.0.1:8080', `http://127.0.0.1:${stack.router.httpPort}`);
      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script.replace(/curl -sS/g, 'curl --fail-with-body -sS')], { timeout: 20_000 });
      outputs.push(stdout);
    }
    const [plain, streamed, anthropic, models] = outputs as [string, string, string, string];
    expect(JSON.parse(plain)).toMatchObject({ object: 'chat.completion', model: 'chat', choices: [{ message: { role: 'assistant', content: expect.any(String) } }] });
    expect(streamed).toMatch(/^data: \{"id":"chatcmpl-/);
    expect(streamed).toContain('"usage":{"prompt_tokens":');
    expect(streamed.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(JSON.parse(anthropic)).toMatchObject({ type: 'message', role: 'assistant', content: [{ type: 'text' }] });
    expect(JSON.parse(models)).toEqual({ object: 'list', data: [{ id: 'chat', object: 'model', created: 0, owned_by: 'switchyard' }] });
  });
});
