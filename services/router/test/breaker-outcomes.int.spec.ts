import { hashApiKey } from '@switchyard/config';
import { BreakerService, CircuitState, ErrorClass, FinishReason, Role, type Final } from '@switchyard/contracts';
import { createClient, type Client } from '@switchyard/grpc';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';
import { sleep } from '@switchyard/util';
import { operatorMetadata, startStack, type Stack } from './stack';

/**
 * What an attempt tells the breaker. One cut short by the caller's deadline is
 * a breaker failure only when the deployment had already taken several times
 * its usual latency: a caller whose deadlines sit just above that latency must
 * not open the breaker for every other caller, while a provider that hangs
 * still opens it. A stream broken after its first output by a failure of the
 * deployment (a reset) counts like that failure.
 */

const KEY = 'deadline-cut-key';
const auth = (deadlineMs: number) => ({ metadata: { 'x-api-key': KEY }, deadlineMs });
const USUAL_MS = 150;

const gatewayYaml = (sim: string) => `
deployments:
  steady: ${simDeploymentYaml(sim, 'steady-model', { price: CHEAP_PRICE })}
  resets: ${simDeploymentYaml(sim, 'resets-model', { price: CHEAP_PRICE })}
  spare: ${simDeploymentYaml(sim, 'spare-model', { price: CHEAP_PRICE })}
routes:
  chat: { cacheable: false, candidates: [{ deployment: steady }] }
  streams: { cacheable: false, candidates: [{ deployment: resets }, { deployment: spare, priority: 1 }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 1 }
  breaker: { consecutiveFailures: 3 }
`;

const scenario = (model: object) => ({
  seed: 3,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: { 'steady-model': model, 'resets-model': { cutAfterChunks: 2, reply: { minTokens: 20, maxTokens: 24 } }, 'spare-model': {} },
});
const ask = () => ({ route: 'chat', messages: [{ role: Role.USER, content: `hello ${Math.random()}` }], params: { maxTokens: 8 } });

describe('what an attempt tells the breaker', () => {
  let stack: Stack;
  let breaker: Client<typeof BreakerService.method>;

  const health = async (deployment = 'steady') => (await breaker.getHealth({ deployment })).health!;
  /** Until the breaker has counted `calls` outcomes in its window (outcomes reach it in batches, after the answer). */
  const windowReaches = async (calls: number) => {
    const until = Date.now() + 5000;
    while ((await health()).windowCalls < calls && Date.now() < until) await sleep(20);
    return health();
  };

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario({ latency: { firstToken: USUAL_MS } }));
    breaker = createClient(BreakerService, stack.routerEnv.BREAKER_ADDR!, { defaultDeadlineMs: 5000, defaultMetadata: operatorMetadata });
  }, 60_000);

  afterAll(async () => {
    breaker?.close();
    await stack?.stop();
  }, 60_000);

  it('deadlines just above the usual latency, cut while the deployment is slower: no breaker failure; a hang cut much later opens it', async () => {
    // The deployment's usual latency, learnt from answers.
    for (let i = 0; i < 4; i++) await stack.client.complete(ask(), auth(10_000));
    const warm = await windowReaches(4);
    expect(warm.windowCalls).toBe(4);

    // Now slower than the callers allow: each attempt starts (the deadline
    // fits the usual latency) and is cut at about 2x that latency.
    await stack.sim.setScenario(scenario({ latency: { firstToken: 5 * USUAL_MS } }));
    for (let i = 0; i < 5; i++) await expect(stack.client.complete(ask(), auth(2 * USUAL_MS + 20))).rejects.toThrow();
    const after = await stack.client.complete(ask(), auth(10_000));
    expect(after.servedBy?.deployment).toBe('steady');
    const counted = await windowReaches(5);
    // Only the answer was counted; five cut attempts with a 5-failure streak would have opened a breaker of 3.
    expect([counted.state, counted.consecutiveFailures, counted.windowCalls]).toEqual([CircuitState.CLOSED, 0, 5]);

    // A hang, cut by callers that gave it far more than its usual latency: three failures open it.
    await stack.sim.setScenario(scenario({ faults: { hang: 1 } }));
    for (let i = 0; i < 3; i++) await expect(stack.client.complete(ask(), auth(8 * USUAL_MS))).rejects.toThrow();
    const until = Date.now() + 5000;
    while ((await health()).state !== CircuitState.OPEN && Date.now() < until) await sleep(20);
    expect((await health()).state).toBe(CircuitState.OPEN);
  }, 30_000);

  it('streams broken by a reset after their first output count as NETWORK failures: the breaker opens and later streams start on the spare', async () => {
    const servedBy: string[] = [];
    for (let i = 0; i < 3; i++) {
      let final: Final | undefined;
      for await (const m of stack.client.streamComplete({ ...ask(), route: 'streams' }, auth(10_000))) if (m.event.case === 'final') final = m.event.value;
      expect(final?.finishReason).toBe(FinishReason.INCOMPLETE);
      // What cut it, for the caller (the HTTP dialects name it too).
      expect(ErrorClass[final!.interruptedBy]).toBe('NETWORK');
      servedBy.push(final?.servedBy?.deployment ?? '');
    }
    expect(servedBy).toEqual(['resets', 'resets', 'resets']);
    const until = Date.now() + 5000;
    while ((await health('resets')).state !== CircuitState.OPEN && Date.now() < until) await sleep(20);
    expect(await health('resets')).toMatchObject({ state: CircuitState.OPEN, lastErrorClass: ErrorClass.NETWORK });
    let final: Final | undefined;
    for await (const m of stack.client.streamComplete({ ...ask(), route: 'streams' }, auth(10_000))) if (m.event.case === 'final') final = m.event.value;
    expect(final?.servedBy?.deployment).toBe('spare');
    expect(final?.finishReason).not.toBe(FinishReason.INCOMPLETE);
  }, 30_000);
});
