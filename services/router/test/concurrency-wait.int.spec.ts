import { hashApiKey } from '@switchyard/config';
import { Role } from '@switchyard/contracts';
import { parseGrpcError } from '@switchyard/grpc';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';
import { startStack, type Stack } from './stack';

/**
 * A deployment limited by concurrency: callers beyond its slots wait in the
 * limiter's queue for one to free (README "Limits"), as for any other quota.
 * The limiter can only bound when a slot frees (the oldest holder's expiry,
 * a minute here), and the router used to compare that bound with the wait
 * it may afford: every caller past the slots was refused at once, told to
 * come back in a minute, while a slot freed 300 ms later.
 */
const KEY = 'concurrency-wait-key';
const SLOTS = 2;
const CALLERS = 6;

const yaml = (sim: string) => `
deployments:
  narrow: ${simDeploymentYaml(sim, 'narrow-model', { price: CHEAP_PRICE, limits: `{ concurrency: ${SLOTS} }` })}
routes:
  chat: { cacheable: false, candidates: [{ deployment: narrow }] }
tenants:
  acme:
    apiKeys: [{ id: acme, sha256: ${hashApiKey(KEY)} }]
defaults:
  headroom: 1
`;

describe('a concurrency-limited deployment (real limiter, simulator answering in 300 ms)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(yaml, { seed: 5, deployments: { 'narrow-model': { latency: { firstToken: 300 } } } });
  }, 60_000);

  afterAll(() => stack?.stop(), 60_000);

  it(`${CALLERS} callers on ${SLOTS} slots: the rest wait for a slot and are all answered; in rounds of ${SLOTS}`, async () => {
    const call = (i: number) =>
      stack.client
        .complete({ route: 'chat', messages: [{ role: Role.USER, content: `slot call ${i}` }], params: { maxTokens: 8 } }, { metadata: { 'x-api-key': KEY }, deadlineMs: 10_000 })
        .then(
          (res) => ({ ok: true as const, served: res.servedBy?.deployment }),
          (err: unknown) => ({ ok: false as const, error: parseGrpcError(err).message }),
        );
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: CALLERS }, (_, i) => call(i)));
    expect(results).toEqual(Array.from({ length: CALLERS }, () => ({ ok: true, served: 'narrow' })));
    expect((await stack.sim.counters())['narrow-model']?.received).toBe(CALLERS);
    // Two at a time, 300 ms each: three rounds at least (a lower bound, whatever the machine's speed).
    expect(Date.now() - started).toBeGreaterThanOrEqual((CALLERS / SLOTS) * 300 - 50);
  }, 30_000);
});
