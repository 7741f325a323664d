import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from '@switchyard/util';
import type { EventBus, Subscription } from './event-bus';
import { assertPublishSubject } from './subjects';

export interface ReplicaPresence {
  readonly id: string;
  /** Live replicas including this one (≥ 1): the divisor of a local fallback share. */
  live(): number;
  close(): Promise<void>;
}

export interface ReplicaPresenceOptions {
  bus: EventBus;
  /** Where the replicas of one service heartbeat (PRESENCE_SUBJECTS); payload: the replica id, UTF-8. */
  subject: string;
  clock?: Clock;
  /** Heartbeat period. Default 1000 ms. */
  intervalMs?: number;
  /** A replica not heard from for this long is gone. Default 3 × interval. */
  ttlMs?: number;
}

/**
 * Who else is sharing a limit: every replica of a service (limiters during a
 * Redis outage, routers while the limiter service is unreachable) heartbeats
 * on the service's subject and counts the replicas heard within the TTL.
 * While NATS itself is away the count is
 * frozen at its last value (peers cannot be heard, but they are not gone:
 * dropping them would hand each replica a larger share and overshoot).
 */
export async function createReplicaPresence(options: ReplicaPresenceOptions): Promise<ReplicaPresence> {
  const { bus } = options;
  const subject = assertPublishSubject(options.subject);
  const clock = options.clock ?? systemClock;
  const intervalMs = options.intervalMs ?? 1_000;
  const ttlMs = options.ttlMs ?? 3 * intervalMs;
  const id = randomUUID();
  const seen = new Map<string, number>([[id, clock.now()]]);
  let frozen: number | undefined;
  const decoder = new TextDecoder();

  const count = () => {
    const now = clock.now();
    seen.set(id, now);
    for (const [peer, at] of seen) if (now - at > ttlMs) seen.delete(peer);
    return seen.size;
  };
  const offStatus = bus.onStatusChange((status) => {
    if (status === 'connected') frozen = undefined;
    else frozen ??= count();
  });
  const sub: Subscription = await bus.subscribe(subject, (msg) => {
    seen.set(decoder.decode(msg.data), clock.now());
  });
  const beat = () => bus.publish(subject, new TextEncoder().encode(id)).catch(() => undefined);
  await beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref?.();

  return {
    id,
    live: () => Math.max(1, frozen ?? count()),
    async close() {
      clearInterval(timer);
      offStatus();
      await sub.unsubscribe().catch(() => undefined);
    },
  };
}
