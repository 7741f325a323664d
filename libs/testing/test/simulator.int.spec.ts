import { spawnSimulator, type SimulatorHandle } from '../src/index';

/** Exercises the wrapper against the real simulator process and its admin API. */
describe('spawnSimulator', () => {
  let sim: SimulatorHandle;
  beforeAll(async () => {
    sim = await spawnSimulator({
      scenario: { seed: 7, deployments: { 'gpt-4o': { contextWindow: 128000 } } },
    });
  }, 30_000);
  afterAll(() => sim?.stop());

  const chat = () =>
    fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
    });

  it('starts with the given scenario and exposes counters and the request log', async () => {
    expect(sim.url).toBe(`http://127.0.0.1:${sim.port}`);
    expect((await chat()).status).toBe(200);
    const counters = await sim.counters();
    expect(counters['gpt-4o']).toMatchObject({ received: 1, byStatus: { '200': 1 } });
    const [request] = await sim.requests('gpt-4o');
    expect(request!.body).toMatchObject({ model: 'gpt-4o', max_tokens: 5 });
  });

  it('reset clears counters; setScenario replaces the scenario', async () => {
    await sim.reset();
    expect((await sim.counters())['gpt-4o']).toBeUndefined();
    await sim.setScenario({ seed: 9, deployments: { 'gpt-4o': { contextWindow: 64000 } } });
    const scenario = (await (await fetch(`${sim.url}/_admin/scenario`)).json()) as { seed: number };
    expect(scenario.seed).toBe(9);
    await expect(sim.setScenario({ seed: -1 })).rejects.toThrow(/simulator PUT \/_admin\/scenario failed: 400/);
    await expect(sim.requests('')).rejects.toThrow(/deployment is required/);
  });
});
