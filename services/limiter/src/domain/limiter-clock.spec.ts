import { parseConfig } from '@switchyard/config';
import { ManualClock } from '@switchyard/util';
import { createMemoryQuotaStore } from '../adapters/memory-quota-store';
import { createLimiter } from './limiter';

const config = parseConfig(`
deployments:
  d1:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 10 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
routes: {}
tenants: {}
`);

describe('limiter acquire on the injected clock', () => {
  it('times its wait and the deadline on the limiter’s clock, not the wall clock', async () => {
    // A clock years behind the wall: a wait measured against Date.now would
    // find the deadline long past and answer at once.
    const clock = new ManualClock(1_000_000);
    const waits: number[] = [];
    const limiter = createLimiter({
      clock,
      store: createMemoryQuotaStore({ clock }),
      config,
      publisher: { publish: async () => undefined },
      wait: async (ms) => {
        waits.push(ms);
        clock.advance(ms);
      },
      schedule: () => () => undefined,
    });
    const acquire = (maxWaitMs: number, deadlineMs?: number) =>
      limiter.acquire({ keys: [{ kind: 'deployment', id: 'd1' }], requests: 0, tokens: 0, reservationTtlMs: 0, maxWaitMs, requestId: '' }, deadlineMs === undefined ? {} : { deadlineMs });
    for (let i = 0; i < 8; i++) expect((await acquire(0)).granted).toBe(true);
    const r = await acquire(60_000, clock.now() + 70_000);
    expect(r).toMatchObject({ granted: true, waitedMs: 60_000 });
    expect(waits).toEqual([60_000]);
  });
});
