import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { AttemptOutcomeSchema, BreakerService, CircuitState, ErrorClass, HealthTransitionSchema } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { createMemoryEventBus, subjects } from '@switchyard/nats';
import { ManualClock } from '@switchyard/util';
import { createMemoryHealthStore, loadConfig, start } from '../src';

/** Embedded mode (npm run demo): the same start() over the in-memory bus and store, no Redis or NATS. */
describe('breaker embedded (memory bus + memory store)', () => {
  it('opens from bus outcomes, publishes one transition, and reaches HALF_OPEN on the injected clock', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const bus = createMemoryEventBus({ name: 'embedded' });
    const config = loadConfig({ GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', BREAKER_SWEEP_INTERVAL_MS: '20', LOG_LEVEL: 'silent' });
    const store = createMemoryHealthStore({ policy: config.policy, clock });
    const breaker = await start(config, { bus, store, clock });
    const client = createClient(BreakerService, `127.0.0.1:${breaker.port}`, { defaultDeadlineMs: 5_000 });
    const seen: number[][] = [];
    await bus.subscribe(subjects.all('health'), (m) => {
      const t = fromBinary(HealthTransitionSchema, m.data);
      seen.push([t.from, t.to]);
    });
    try {
      for (let i = 0; i < 5; i++) {
        const outcome = create(AttemptOutcomeSchema, {
          eventId: `e${i}`,
          deployment: { provider: 'openai', deployment: 'demo', model: 'm' },
          errorClass: ErrorClass.SERVER_ERROR,
        });
        await bus.publishDurable(subjects.outcome('openai', 'demo'), toBinary(AttemptOutcomeSchema, outcome));
      }
      const waitFor = async (n: number) => {
        for (let i = 0; i < 200 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      };
      await waitFor(1);
      expect(seen).toEqual([[CircuitState.CLOSED, CircuitState.OPEN]]);
      clock.advance(30_000);
      await waitFor(2);
      expect(seen).toEqual([
        [CircuitState.CLOSED, CircuitState.OPEN],
        [CircuitState.OPEN, CircuitState.HALF_OPEN],
      ]);
      expect((await client.getHealth({ deployment: 'demo' })).health?.state).toBe(CircuitState.HALF_OPEN);
    } finally {
      client.close();
      await breaker.stop();
    }
  });
});
