import { startNats, type ServerHandle } from '@switchyard/testing';
import { createNatsEventBus, type BusStatus, type EventBus } from '../src/index';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const tick = () => {
      if (predicate()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

describe('NATS event bus across a nats-server crash', () => {
  let nats: ServerHandle;
  const buses: EventBus[] = [];

  beforeAll(async () => {
    // Own server: this test kills it.
    nats = await startNats({ jetstream: true });
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await nats.stop();
  });

  it('reports the outage, reconnects, and the KV watch and durable consumer resume', async () => {
    const router = await createNatsEventBus({ url: nats.url, name: 'router' });
    buses.push(router);
    const statuses: BusStatus[] = [];
    router.onStatusChange((s) => statuses.push(s));

    const kv = await router.kv('sy_health');
    await kv.put('openai.gpt4o', enc('CLOSED'));
    const replica = new Map<string, string | null>();
    await kv.watch({ onEntry: (key, value) => replica.set(key, dec(value)) });
    expect(replica.get('openai.gpt4o')).toBe('CLOSED');

    await router.ensureStream({ name: 'OUT', subjects: ['out.>'] });
    const outcomes: string[] = [];
    await router.consume({ stream: 'OUT', durable: 'breaker', handler: (m) => void outcomes.push(dec(m.data)!) });
    await router.publishDurable('out.a', enc('before'));
    await until(() => outcomes.includes('before'), 'outcome before the crash');

    await nats.kill();
    await until(() => router.status() !== 'connected', 'bus to notice the outage');
    expect(['disconnected', 'reconnecting']).toContain(router.status());

    await nats.restart();
    await until(() => router.status() === 'connected', 'bus to reconnect');
    expect(statuses[0]).toBe('disconnected');
    expect(statuses.at(-1)).toBe('connected');

    // Another process writes after the restart: the existing watch must see it.
    const breaker = await createNatsEventBus({ url: nats.url, name: 'breaker' });
    buses.push(breaker);
    await (await breaker.kv('sy_health')).put('openai.gpt4o', enc('OPEN'));
    await until(() => replica.get('openai.gpt4o') === 'OPEN', 'watch to resume after reconnect');

    await breaker.publishDurable('out.a', enc('after'));
    await until(() => outcomes.includes('after'), 'durable consumer to resume after reconnect');
    expect(outcomes.filter((o) => o === 'before')).toHaveLength(1);
  }, 30_000);
});
