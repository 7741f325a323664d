import { APIError, AzureOpenAI } from 'openai';
import { countChatTokens } from '@switchyard/tokens';
import { ManualClock } from '@switchyard/util';
import { createSimulator } from '../src/index';
import { useSimulator } from './helpers';

const messages = [{ role: 'user' as const, content: 'Summarise the outage.' }];
const apiVersion = '2024-10-21';

function azure(url: string, deployment: string, apiKey = 'azure-key') {
  return new AzureOpenAI({ endpoint: url, apiKey, apiVersion, deployment, maxRetries: 0 });
}

describe('Azure OpenAI through AzureOpenAI', () => {
  const sim = useSimulator({
    scenario: {
      deployments: {
        'prod-gpt4o': { model: 'gpt-4o-2024-08-06', limits: { rpm: 600, tpm: 100_000 } },
        throttled: { faults: { rate_limit: 1 }, retryAfterMs: 7000 },
        filtered: { faults: { content_policy: 1 } },
      },
    },
  });

  it('routes by the deployment in the path, authenticates with api-key and reports the underlying model', async () => {
    const { data, response } = await azure(sim.current.url, 'prod-gpt4o').chat.completions.create({ model: '', messages }).withResponse();
    expect(data.model).toBe('gpt-4o-2024-08-06');
    expect(data.choices[0]!.message.content).toMatch(/^Simulated answer/);
    expect(data.usage!.prompt_tokens).toBe(countChatTokens(messages, 'azure'));
    expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('599');
    const [recorded] = sim.current.requests('prod-gpt4o');
    expect(recorded!.path).toBe('/openai/deployments/prod-gpt4o/chat/completions');
    expect(recorded!.headers['api-key']).toBe('azure-key');
  });

  it('streams', async () => {
    const stream = await azure(sim.current.url, 'prod-gpt4o').chat.completions.create({ model: '', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toMatch(/^Simulated answer/);
    expect(usage!.prompt_tokens).toBe(countChatTokens(messages, 'azure'));
  });

  it('answers throttling with Azure\'s 429 body and retry-after', async () => {
    const err = (await azure(sim.current.url, 'throttled').chat.completions.create({ model: '', messages }).catch((e) => e)) as APIError;
    expect(err.status).toBe(429);
    expect(err.code).toBe('429');
    expect(err.message).toMatch(/under Azure OpenAI API version 2024-10-21 have exceeded call rate limit.*Please retry after 7 seconds/);
    expect(err.headers?.get('retry-after')).toBe('7');
  });

  it('answers a content policy fault with code content_filter', async () => {
    const err = (await azure(sim.current.url, 'filtered').chat.completions.create({ model: '', messages }).catch((e) => e)) as APIError;
    expect(err.status).toBe(400);
    expect(err.code).toBe('content_filter');
  });

  it('answers 404 Resource not found without api-version, and 401 without api-key', async () => {
    const url = `${sim.current.url}/openai/deployments/prod-gpt4o/chat/completions`;
    const body = JSON.stringify({ messages });
    const noVersion = await fetch(url, { method: 'POST', headers: { 'api-key': 'k' }, body });
    expect(noVersion.status).toBe(404);
    expect(await noVersion.json()).toEqual({ error: { code: '404', message: 'Resource not found' } });
    const noKey = await fetch(`${url}?api-version=${apiVersion}`, { method: 'POST', body });
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { error: { message: string; type: string } }).error.message).toMatch(/Access denied due to invalid subscription key/);
  });
});

describe('Azure token limits', () => {
  it('reports a token-limit 429 with the wait in whole seconds', async () => {
    const clock = new ManualClock(0);
    const sim = await createSimulator({ clock, scenario: { deployments: { d: { limits: { tpm: 600 } } } } });
    try {
      const c = azure(sim.url, 'd');
      await c.chat.completions.create({ model: '', messages, max_tokens: 500 });
      const err = (await c.chat.completions.create({ model: '', messages, max_tokens: 500 }).catch((e) => e)) as APIError;
      expect(err.status).toBe(429);
      expect(err.message).toMatch(/exceeded token rate limit/);
      const ms = Number(err.headers?.get('retry-after-ms'));
      expect(err.message).toContain(`Please retry after ${Math.ceil(ms / 1000)} second`);
    } finally {
      await sim.stop();
    }
  });
});
