import { hashApiKey } from '@switchyard/config';
import { Role } from '@switchyard/contracts';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';
import { startStack, type Stack } from './stack';

/**
 * A primary that hangs must not take the whole deadline: the router keeps the
 * fallback's time (twice its usual latency), so the caller is answered by the
 * fallback before its deadline instead of failing at it.
 */

const KEY = 'hung-primary-key';
const auth = (deadlineMs: number) => ({ metadata: { 'x-api-key': KEY }, deadlineMs });

const gatewayYaml = (sim: string) => `
deployments:
  primary: ${simDeploymentYaml(sim, 'primary-model', { price: CHEAP_PRICE })}
  fallback: ${simDeploymentYaml(sim, 'fallback-model', { price: CHEAP_PRICE })}
routes:
  chat: { cacheable: false, candidates: [{ deployment: primary }, { deployment: fallback, priority: 1 }] }
  fallback-only: { cacheable: false, candidates: [{ deployment: fallback }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  breaker: { consecutiveFailures: 1000 }
`;

const scenario = (primary: object) => ({
  seed: 5,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: { 'primary-model': primary, 'fallback-model': { latency: { firstToken: 20 } } },
});
const ask = (route: string) => ({ route, messages: [{ role: Role.USER, content: `hello ${Math.random()}` }], params: { maxTokens: 8 } });

describe('a hung primary with a fallback', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario({ latency: { firstToken: 100 } }));
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('is cut in time for the fallback to answer before the caller\'s deadline', async () => {
    // Both deployments' usual latency, learnt from answers.
    for (let i = 0; i < 3; i++) {
      expect((await stack.client.complete(ask('chat'), auth(10_000))).servedBy?.deployment).toBe('primary');
      expect((await stack.client.complete(ask('fallback-only'), auth(10_000))).servedBy?.deployment).toBe('fallback');
    }
    await stack.sim.setScenario(scenario({ faults: { hang: 1 } }));
    const deadlineMs = 1500;
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const answer = await stack.client.complete(ask('chat'), auth(deadlineMs));
      expect(Date.now() - started).toBeLessThan(deadlineMs);
      expect(answer.servedBy?.deployment).toBe('fallback');
      expect(answer.attempts.map((a) => a.deployment?.deployment)).toEqual(['primary', 'fallback']);
      expect(answer.attempts[0]!.note).toMatch(/keeping \d+ ms for fallback/);
    }
  }, 30_000);
});
