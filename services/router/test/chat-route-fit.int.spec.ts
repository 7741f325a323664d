import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorClass, FinishReason, Role } from '@switchyard/contracts';
import { SIM_KEY, startStack, type Stack } from './stack';

/**
 * Parameters are fitted to each candidate, on the route config we ship
 * (deploy/config/switchyard.yaml `chat`: OpenAI → Anthropic → Azure): a
 * temperature Anthropic cannot take no longer fails the whole call before
 * OpenAI is even tried.
 */

const CALLER_KEY = 'sk-switchyard-demo'; // the shipped config's example caller key (tenant acme)
const auth = { metadata: { 'x-api-key': CALLER_KEY } };
const shipped = readFileSync(join(__dirname, '../../../deploy/config/switchyard.yaml'), 'utf8');
const scenario = (openaiFaults: object = {}) => ({ seed: 3, deployments: { 'gpt-4o': { faults: openaiFaults }, 'claude-sonnet-4-6': {}, 'gpt-4o-eu': {} } });

let stack: Stack;

beforeAll(async () => {
  stack = await startStack((sim) => shipped.replaceAll('${SIMULATOR_URL}', sim), scenario(), {
    OPENAI_API_KEY: SIM_KEY,
    ANTHROPIC_API_KEY: SIM_KEY,
    AZURE_OPENAI_API_KEY: SIM_KEY,
  });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

const ask = (content: string) => ({ route: 'chat', messages: [{ role: Role.USER, content }], params: { maxTokens: 100, temperature: 1.5 } });
const lastBody = async (model: string) => (await stack.sim.requests(model)).at(-1)?.body as Record<string, unknown> | undefined;

describe('temperature 1.5 on the shipped chat route', () => {
  it('is served by OpenAI as asked (no candidate-wide rejection, no note)', async () => {
    const res = await stack.client.complete(ask('Hello at 1.5'), auth);
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(res.servedBy?.deployment).toBe('openai-gpt4o');
    expect(res.attempts.map((a) => a.note)).toEqual(['']);
    expect((await lastBody('gpt-4o'))!['temperature']).toBe(1.5);
  });

  it('reaches Anthropic clamped to 1, with a note on the attempt, when OpenAI is down', async () => {
    await stack.sim.setScenario(scenario({ server_error: 1 }));
    await stack.sim.reset();
    const res = await stack.client.complete(ask('Hello when OpenAI is down'), auth);
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(res.servedBy?.deployment).toBe('anthropic-sonnet');
    const anthropic = res.attempts.filter((a) => a.deployment?.deployment === 'anthropic-sonnet');
    expect(anthropic.map((a) => [a.errorClass, a.note])).toEqual([[ErrorClass.UNSPECIFIED, 'temperature 1.5 clamped to 1 (anthropic range 0-1)']]);
    // OpenAI's attempts say only why they failed: the clamp is Anthropic's alone.
    const openai = res.attempts.filter((a) => a.deployment?.deployment === 'openai-gpt4o');
    expect(openai.length).toBeGreaterThan(0);
    for (const a of openai) {
      expect(a.errorClass).toBe(ErrorClass.SERVER_ERROR);
      expect(a.note).not.toContain('temperature');
    }
    expect((await lastBody('claude-sonnet-4-6'))!['temperature']).toBe(1);
    expect((await stack.sim.requests('gpt-4o')).every((r) => (r.body as { temperature: number }).temperature === 1.5)).toBe(true);
  }, 30_000);
});
