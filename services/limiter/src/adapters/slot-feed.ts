import { randomUUID } from 'node:crypto';
import type { EventBus, Subscription } from '@switchyard/nats';
import type { SlotFeed } from '../domain/limiter';

/** Concurrency slots freed by a Settle; payload JSON `{ "from": <replica id>, "keys": ["deployment:<id>", …] }`. */
export const SLOTS_FREED_SUBJECT = 'switchyard.limiter.slots';

interface SlotsFreed {
  from: string;
  keys: string[];
}

/**
 * Carries "a concurrency slot of key K was freed" between limiter replicas, so
 * a Settle on one replica wakes the waiters blocked on K on every other one.
 *
 * Why NATS and not Redis pub/sub: every replica already holds a NATS
 * connection (quota events, replica heartbeats), and the embedded demo's
 * in-memory bus carries the same subject, so one code path serves both
 * stores; Redis pub/sub would need a second, subscriber-mode connection per
 * replica (a subscribed ioredis client can run no scripts) and would put the
 * fan-out on the one Redis shard that holds every limiter key (`{lim}`; on
 * Redis Cluster a PUBLISH is broadcast to every node). What Redis pub/sub
 * would buy — a publish inside the settle script, lost only with Redis
 * itself — does not matter here: a lost wake-up costs one poll interval
 * (LimiterSettings.concurrencyPollMs), never a stuck waiter, and with NATS
 * down the other replicas simply poll.
 *
 * The announcing replica wakes its own waiters in-process before publishing;
 * its own messages coming back are skipped by the `from` id.
 */
export function createSlotFeed(bus: EventBus): SlotFeed & { listen(onFreed: (keyNames: string[]) => void): Promise<Subscription> } {
  const id = randomUUID();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return {
    async announce(keyNames) {
      await bus.publish(SLOTS_FREED_SUBJECT, encoder.encode(JSON.stringify({ from: id, keys: keyNames } satisfies SlotsFreed)));
    },
    listen(onFreed) {
      return bus.subscribe(SLOTS_FREED_SUBJECT, (msg) => {
        let event: Partial<SlotsFreed>;
        try {
          event = JSON.parse(decoder.decode(msg.data)) as Partial<SlotsFreed>;
        } catch {
          return;
        }
        if (event.from === id || !Array.isArray(event.keys)) return;
        onFreed(event.keys.filter((k): k is string => typeof k === 'string'));
      });
    },
  };
}
