/**
 * Throughput of the simulator on one core with zero latency.
 *
 *   npx tsx services/simulator/bench/simulator-load.ts [--connections 50] [--duration 10] [--provider openai|anthropic|azure] [--stream] [--unique-prompts]
 *
 * Spawns the simulator CLI as its own process (built-in scenario: no latency, limits high enough not to bite,
 * but still evaluated on every request) and drives it with autocannon over keep-alive connections from this
 * process, so client and server each get a core. Prints requests/s, latency and non-2xx counts as JSON.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import autocannon from 'autocannon';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] && !process.argv[i + 1]!.startsWith('--') ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const connections = Number(arg('connections', '50'));
  const duration = Number(arg('duration', '10'));
  const provider = arg('provider', 'openai');
  const stream = process.argv.includes('--stream');
  // Every request a new prompt: measures the uncached tokenizer path instead of the prompt-cache hit.
  const unique = process.argv.includes('--unique-prompts');

  const entry = resolve(__dirname, '../src/main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', entry, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  let port = 0;
  for await (const line of lines) {
    if (line.includes('"listening"')) {
      port = JSON.parse(line).port;
      break;
    }
  }
  const prompt = 'Summarise the incident report: the provider returned 429 for twelve minutes. '.repeat(8);
  const request =
    provider === 'anthropic'
      ? {
          path: '/v1/messages',
          headers: { 'content-type': 'application/json', 'x-api-key': 'bench', 'anthropic-version': '2023-06-01' },
          body: { model: 'claude-sonnet-4-6', max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: prompt }], stream },
        }
      : provider === 'azure'
        ? {
            path: '/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21',
            headers: { 'content-type': 'application/json', 'api-key': 'bench' },
            body: { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: prompt }], max_tokens: 64, stream },
          }
        : {
            path: '/v1/chat/completions',
            headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
            body: { model: 'gpt-4o', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: prompt }], max_tokens: 64, stream },
          };

  let sequence = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${request.path}`,
    method: 'POST',
    headers: request.headers,
    body: JSON.stringify(request.body),
    connections,
    duration,
    ...(unique
      ? {
          requests: [
            {
              setupRequest: (req: { body?: string }) => {
                req.body = JSON.stringify(request.body).replace('Summarise', `Summarise #${++sequence}`);
                return req;
              },
            },
          ],
        }
      : {}),
  });
  const counters = await (await fetch(`http://127.0.0.1:${port}/_admin/counters`)).json();
  child.kill('SIGTERM');
  await once(child, 'exit');
  console.log(
    JSON.stringify({
      provider,
      stream,
      uniquePrompts: unique,
      connections,
      durationS: duration,
      requestsPerSec: Math.round(result.requests.average),
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
      total: result.requests.total,
      non2xx: result.non2xx,
      errors: result.errors,
      counters,
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
