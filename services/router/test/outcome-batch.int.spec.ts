import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { hashApiKey } from '@switchyard/config';
import { BreakerService, Role } from '@switchyard/contracts';
import { createClient, type Client } from '@switchyard/grpc';
import { OUTCOMES_STREAM, subjects } from '@switchyard/nats';
import { operatorMetadata, startStack, type Stack } from './stack';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';

/**
 * OUTCOME_BATCH_MS over real NATS (JetStream), the real breaker and Redis: the
 * outcomes of many calls leave as one durable message (one ack) and the
 * breaker ends with the same health as from one message per outcome; a
 * graceful stop sends the batch still waiting for its window.
 */
const KEY = 'batch-key';
const CALLS = 12;

const yaml = (sim: string) => `
deployments:
  batched: ${simDeploymentYaml(sim, 'gpt-4o-mini', { price: CHEAP_PRICE })}
  single: ${simDeploymentYaml(sim, 'gpt-4o-mini', { price: CHEAP_PRICE })}
routes:
  via-batched: { cacheable: false, candidates: [{ deployment: batched }] }
  via-single: { cacheable: false, candidates: [{ deployment: single }] }
tenants:
  t:
    apiKeys: [{ id: t-main, sha256: ${hashApiKey(KEY)} }]
`;

describe('outcome batching (OUTCOME_BATCH_MS)', () => {
  let stack: Stack;
  let nc: NatsConnection;
  let breaker: Client<typeof BreakerService.method>;
  beforeAll(async () => {
    // A window far longer than the test: only the size bound or the stop can send the batch.
    stack = await startStack(yaml, { seed: 3 }, { OUTCOME_BATCH_MS: '60000', OUTCOME_BATCH_MAX: '1000' });
    nc = await connect({ servers: stack.routerEnv.NATS_URL });
    breaker = createClient(BreakerService, stack.routerEnv.BREAKER_ADDR!, { defaultDeadlineMs: 5_000 });
  }, 60_000);
  afterAll(async () => {
    breaker?.close();
    await nc?.close();
    await stack?.stop();
  });

  /** Messages stored per outcome subject kind. */
  async function stored(): Promise<{ batches: number; singles: number }> {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(OUTCOMES_STREAM, { subjects_filter: '>' });
    const bySubject = info.state.subjects ?? {};
    const batches = bySubject[subjects.outcomeBatch()] ?? 0;
    const total = Object.values(bySubject).reduce((a, b) => a + b, 0);
    return { batches, singles: total - batches };
  }

  async function drained(): Promise<void> {
    const until = Date.now() + 10_000;
    for (;;) {
      const info = await (await jetstreamManager(nc)).consumers.info(OUTCOMES_STREAM, 'breaker');
      if (info.num_pending === 0 && info.num_ack_pending === 0) return;
      if (Date.now() > until) throw new Error('the breaker never consumed the outcomes');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const health = async (deployment: string) => {
    const h = (await breaker.getHealth({ deployment }, { metadata: operatorMetadata })).health!;
    return { state: h.state, windowCalls: h.windowCalls, consecutiveFailures: h.consecutiveFailures, failureRate: h.failureRate, epoch: h.epoch };
  };

  it('sends the outcomes of many calls as one message once stopped, and the breaker counts every one as one by one', async () => {
    const one = await stack.startRouter({ OUTCOME_BATCH_MS: '0' });
    const call = (client: typeof one.client, route: string, i: number) =>
      client.complete({ route, messages: [{ role: Role.USER, content: `call ${i}` }], params: { maxTokens: 8 } }, { metadata: { 'x-api-key': KEY } });
    for (let i = 0; i < CALLS; i++) {
      await call(stack.client, 'via-batched', i);
      await call(one.client, 'via-single', i);
    }
    await one.router.stop();
    await drained();
    // One message (and one ack) per outcome without batching; the batching router's are all still waiting.
    expect(await stored()).toEqual({ batches: 0, singles: CALLS });

    // A graceful stop flushes the waiting batch instead of losing it (or waiting out the window).
    await stack.router.stop();
    expect(await stored()).toEqual({ batches: 1, singles: CALLS });
    await drained();
    const single = await health('single');
    expect(single.windowCalls).toBe(CALLS);
    expect(await health('batched')).toEqual(single);
  }, 60_000);
});
