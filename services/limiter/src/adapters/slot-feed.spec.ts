import { createMemoryBroker, createMemoryEventBus } from '@switchyard/nats';
import { SLOTS_FREED_SUBJECT, createSlotFeed } from './slot-feed';

async function flush() {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

describe('slot feed', () => {
  it('carries freed keys to the other replicas, not back to the announcing one, and ignores garbage', async () => {
    const broker = createMemoryBroker();
    const [busA, busB] = [createMemoryEventBus({ name: 'a', broker }), createMemoryEventBus({ name: 'b', broker })];
    const [a, b] = [createSlotFeed(busA), createSlotFeed(busB)];
    const heard: Record<'a' | 'b', string[][]> = { a: [], b: [] };
    await a.listen((keys) => heard.a.push(keys));
    await b.listen((keys) => heard.b.push(keys));

    await a.announce(['deployment:d1', 'tenant:t1']);
    await busB.publish(SLOTS_FREED_SUBJECT, new TextEncoder().encode('not json'));
    await busB.publish(SLOTS_FREED_SUBJECT, new TextEncoder().encode('{"from":"x","keys":"deployment:d1"}'));
    await flush();

    expect(heard).toEqual({ a: [], b: [['deployment:d1', 'tenant:t1']] });
    await Promise.all([busA.close(), busB.close()]);
  });
});
