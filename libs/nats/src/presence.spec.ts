import { createMemoryBroker, createMemoryEventBus } from './memory-event-bus';
import type { BusStatus, EventBus } from './event-bus';
import { createReplicaPresence, type ReplicaPresence } from './presence';
import { PRESENCE_SUBJECTS } from './subjects';

/** A memory bus whose connection status the test sets (the memory bus itself is always connected). */
function busWithStatus(bus: EventBus): EventBus & { setStatus(s: BusStatus): void } {
  const listeners = new Set<(s: BusStatus) => void>();
  let current: BusStatus = 'connected';
  return Object.assign(Object.create(bus) as EventBus, {
    status: () => current,
    onStatusChange(listener: (s: BusStatus) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    setStatus(s: BusStatus) {
      current = s;
      for (const l of listeners) l(s);
    },
  });
}

describe('replica presence (heartbeats on a NATS subject)', () => {
  const opened: ReplicaPresence[] = [];
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((p) => p.close()));
    jest.useRealTimers();
  });

  async function replicas(n: number, subject: string, broker = createMemoryBroker()) {
    const out: ReplicaPresence[] = [];
    for (let i = 0; i < n; i++) out.push(await createReplicaPresence({ bus: createMemoryEventBus({ broker }), subject, intervalMs: 100 }));
    opened.push(...out);
    return out;
  }

  it('counts every replica heard within the TTL, itself included', async () => {
    const [a, b, c] = await replicas(3, PRESENCE_SUBJECTS.router);
    await jest.advanceTimersByTimeAsync(150);
    expect([a!.live(), b!.live(), c!.live()]).toEqual([3, 3, 3]);
  });

  it('forgets a replica that stopped heartbeating for longer than 3 × the interval', async () => {
    const [a, b] = await replicas(2, PRESENCE_SUBJECTS.router);
    await jest.advanceTimersByTimeAsync(150);
    expect(a!.live()).toBe(2);
    await b!.close();
    await jest.advanceTimersByTimeAsync(250);
    expect(a!.live()).toBe(2);
    await jest.advanceTimersByTimeAsync(200);
    expect(a!.live()).toBe(1);
  });

  it('keeps the services apart: routers do not count limiter replicas', async () => {
    const broker = createMemoryBroker();
    const [router] = await replicas(1, PRESENCE_SUBJECTS.router, broker);
    await replicas(2, PRESENCE_SUBJECTS.limiter, broker);
    await jest.advanceTimersByTimeAsync(150);
    expect(router!.live()).toBe(1);
  });

  it('freezes the count while the bus is disconnected (peers unheard are not gone)', async () => {
    const broker = createMemoryBroker();
    const bus = busWithStatus(createMemoryEventBus({ broker }));
    const a = await createReplicaPresence({ bus, subject: PRESENCE_SUBJECTS.router, intervalMs: 100 });
    opened.push(a);
    const [b] = await replicas(1, PRESENCE_SUBJECTS.router, broker);
    await jest.advanceTimersByTimeAsync(150);
    bus.setStatus('reconnecting');
    await b!.close();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(a.live()).toBe(2);
    bus.setStatus('connected');
    expect(a.live()).toBe(1);
  });

  it('refuses a subject it could not publish on', async () => {
    await expect(createReplicaPresence({ bus: createMemoryEventBus(), subject: 'switchyard.*.replicas' })).rejects.toThrow(/not publishable/);
  });
});
