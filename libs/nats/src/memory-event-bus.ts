import { withConsumerSpan, withProducerSpan } from '@switchyard/telemetry';
import { systemClock, type Clock } from '@switchyard/util';
import {
  KvConflictError,
  silentLogger,
  type BusLogger,
  type BusMessage,
  type BusStatus,
  type Consumer,
  type ConsumeOptions,
  type DurableMessage,
  type EventBus,
  type Headers,
  type KvEntry,
  type KvStore,
  type KvWatcher,
  type StreamSpec,
  type Subscription,
} from './event-bus';
import { createSerialQueue } from './serial-queue';
import {
  assertBucket,
  assertFilterSubject,
  assertKvKey,
  assertPublishSubject,
  subjectMatches,
} from './subjects';

const DEFAULT_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const MAX_MESSAGES_PER_STREAM = 100_000;

interface StoredMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: Headers;
  at: number;
}

interface DurableState {
  filter: string;
  /** Every message with seq <= cursor has been acked (or given up on). */
  cursor: number;
  deliveries: Map<number, number>;
  handlers: ConsumeOptions[];
  next: number;
  pumping: boolean;
  inFlight: Promise<void>;
  cancelDelay?: () => void;
}

interface MemoryStream {
  spec: StreamSpec;
  messages: StoredMessage[];
  lastSeq: number;
  msgIds: Map<string, number>;
  durables: Map<string, DurableState>;
  wake: Set<() => void>;
}

type KvRecord = { value: Uint8Array | null; revision: number };

interface MemoryBucket {
  entries: Map<string, KvRecord>;
  revision: number;
  watchers: Set<(key: string, record: KvRecord) => void>;
}

/**
 * In-process stand-in for the NATS server: one broker can be shared by several
 * bus clients (e.g. all services of the embedded demo, or two router replicas
 * in a test), exactly as they would share one nats-server.
 */
export interface MemoryBroker {
  readonly subscriptions: Set<{ filter: string; deliver(msg: BusMessage): void }>;
  readonly streams: Map<string, MemoryStream>;
  readonly buckets: Map<string, MemoryBucket>;
  readonly clock: Clock;
}

export function createMemoryBroker(options: { clock?: Clock } = {}): MemoryBroker {
  return { subscriptions: new Set(), streams: new Map(), buckets: new Map(), clock: options.clock ?? systemClock };
}

export interface MemoryEventBusOptions {
  name?: string;
  /** Share one broker between buses to model several processes on one server. Default: a private broker. */
  broker?: MemoryBroker;
  logger?: BusLogger;
}

function copy(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  return data.slice();
}

function headerGetter(headers: Headers) {
  return (key: string) => headers[key];
}

function streamFor(broker: MemoryBroker, subject: string): MemoryStream | undefined {
  for (const stream of broker.streams.values()) {
    if (stream.spec.subjects.some((filter) => subjectMatches(filter, subject))) return stream;
  }
  return undefined;
}

function append(broker: MemoryBroker, stream: MemoryStream, subject: string, data: Uint8Array, headers: Headers): number {
  const now = broker.clock.now();
  const seq = ++stream.lastSeq;
  stream.messages.push({ seq, subject, data, headers, at: now });
  // Retention, as a limits-based stream would apply it.
  const maxAge = stream.spec.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  while (stream.messages.length > 0 && (now - stream.messages[0]!.at > maxAge || stream.messages.length > MAX_MESSAGES_PER_STREAM)) {
    stream.messages.shift();
  }
  for (const wake of stream.wake) wake();
  return seq;
}

/** In-process EventBus for the embedded demo mode and unit tests; same contract as NATS. */
export function createMemoryEventBus(options: MemoryEventBusOptions = {}): EventBus {
  const broker = options.broker ?? createMemoryBroker();
  const name = options.name ?? 'memory';
  const logger = options.logger ?? silentLogger;
  let status: BusStatus = 'connected';
  const statusListeners = new Set<(status: BusStatus) => void>();
  const closers = new Set<() => Promise<void>>();

  const assertOpen = () => {
    if (status === 'closed') throw new Error(`event bus ${name} is closed`);
  };

  /** Core publish: subscribers get it, and so does a stream that captures the subject (as in NATS). */
  const deliver = (subject: string, data: Uint8Array, headers: Headers) => {
    for (const sub of broker.subscriptions) {
      if (subjectMatches(sub.filter, subject)) sub.deliver({ subject, data: data.slice(), headers: { ...headers } });
    }
  };

  const bus: EventBus = {
    name,

    async publish(subject, data, publishOptions = {}) {
      assertOpen();
      assertPublishSubject(subject);
      const body = copy(data);
      await withProducerSpan(subject, (traceHeaders) => {
        const headers = { ...publishOptions.headers, ...traceHeaders };
        const stream = streamFor(broker, subject);
        if (stream) append(broker, stream, subject, body, headers);
        deliver(subject, body, headers);
      });
    },

    async subscribe(subject, handler) {
      assertOpen();
      assertFilterSubject(subject);
      const queue = createSerialQueue((err) => logger.error({ err, subject }, 'event handler failed'));
      let active = true;
      const entry = {
        filter: subject,
        deliver(msg: BusMessage) {
          queue.push(async () => {
            if (!active) return;
            await withConsumerSpan(msg.subject, headerGetter(msg.headers), () => handler(msg));
          });
        },
      };
      broker.subscriptions.add(entry);
      const unsubscribe = async () => {
        active = false;
        broker.subscriptions.delete(entry);
        closers.delete(unsubscribe);
      };
      closers.add(unsubscribe);
      return { unsubscribe } satisfies Subscription;
    },

    async ensureStream(spec) {
      assertOpen();
      if (!spec?.name) throw new TypeError('ensureStream: name is required');
      if (!Array.isArray(spec.subjects) || spec.subjects.length === 0) {
        throw new TypeError(`ensureStream(${spec.name}): subjects must be a non-empty array`);
      }
      spec.subjects.forEach(assertFilterSubject);
      for (const other of broker.streams.values()) {
        if (other.spec.name === spec.name) continue;
        const overlap = other.spec.subjects.some((a) => spec.subjects.some((b) => subjectMatches(a, b) || subjectMatches(b, a)));
        if (overlap) throw new Error(`ensureStream(${spec.name}): subjects overlap with stream ${other.spec.name}`);
      }
      const existing = broker.streams.get(spec.name);
      if (existing) {
        existing.spec = { ...spec };
        return;
      }
      broker.streams.set(spec.name, {
        spec: { ...spec },
        messages: [],
        lastSeq: 0,
        msgIds: new Map(),
        durables: new Map(),
        wake: new Set(),
      });
    },

    async publishDurable(subject, data, publishOptions = {}) {
      assertOpen();
      assertPublishSubject(subject);
      const stream = streamFor(broker, subject);
      if (!stream) throw new Error(`publishDurable(${subject}): no stream captures this subject (call ensureStream first)`);
      const body = copy(data);
      return withProducerSpan(subject, (traceHeaders) => {
        if (publishOptions.msgId !== undefined) {
          const seen = stream.msgIds.get(publishOptions.msgId);
          if (seen !== undefined) return { seq: seen, duplicate: true };
        }
        const headers = { ...publishOptions.headers, ...traceHeaders };
        const seq = append(broker, stream, subject, body, headers);
        if (publishOptions.msgId !== undefined) stream.msgIds.set(publishOptions.msgId, seq);
        deliver(subject, body, headers);
        return { seq, duplicate: false };
      });
    },

    async consume(consumeOptions) {
      assertOpen();
      const stream = broker.streams.get(consumeOptions.stream);
      if (!stream) throw new Error(`consume: stream ${consumeOptions.stream} does not exist (call ensureStream first)`);
      if (!consumeOptions.durable) throw new TypeError('consume: durable is required');
      const filter = consumeOptions.filterSubject ? assertFilterSubject(consumeOptions.filterSubject) : '>';
      let state = stream.durables.get(consumeOptions.durable);
      if (!state) {
        state = { filter, cursor: 0, deliveries: new Map(), handlers: [], next: 0, pumping: false, inFlight: Promise.resolve() };
        stream.durables.set(consumeOptions.durable, state);
      } else if (state.filter !== filter) {
        throw new Error(`consume: durable ${consumeOptions.durable} exists with filter ${state.filter}, not ${filter}`);
      }
      const durable = state;
      durable.handlers.push(consumeOptions);

      const wake = () => void pumpDurable(stream, durable, logger);
      stream.wake.add(wake);
      wake();

      const stop = async () => {
        stream.wake.delete(wake);
        const index = durable.handlers.indexOf(consumeOptions);
        if (index >= 0) durable.handlers.splice(index, 1);
        // Cut a nak back-off short so the pump notices it has no handler left.
        durable.cancelDelay?.();
        await durable.inFlight;
        closers.delete(stop);
      };
      closers.add(stop);
      return { stop } satisfies Consumer;
    },

    async kv(bucketName) {
      assertOpen();
      assertBucket(bucketName);
      let bucket = broker.buckets.get(bucketName);
      if (!bucket) {
        bucket = { entries: new Map(), revision: 0, watchers: new Set() };
        broker.buckets.set(bucketName, bucket);
      }
      return createMemoryKv(bucketName, bucket, () => assertOpen(), closers);
    },

    status: () => status,

    onStatusChange(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },

    async close() {
      if (status === 'closed') return;
      await Promise.all([...closers].map((close) => close()));
      status = 'closed';
      for (const listener of statusListeners) listener(status);
    },
  };
  return bus;
}

/**
 * Delivers a durable's messages one at a time: ack (advance the cursor) when
 * the handler resolves, redeliver after a delay when it throws.
 */
async function pumpDurable(stream: MemoryStream, durable: DurableState, logger: BusLogger): Promise<void> {
  if (durable.pumping) return;
  durable.pumping = true;
  try {
    for (;;) {
      if (durable.handlers.length === 0) return;
      // Messages retained away below the cursor are skipped, as in JetStream.
      const msg = stream.messages.find((m) => m.seq > durable.cursor && subjectMatches(durable.filter, m.subject));
      if (!msg) return;
      const current = durable.handlers[durable.next++ % durable.handlers.length]!;
      const count = (durable.deliveries.get(msg.seq) ?? 0) + 1;
      durable.deliveries.set(msg.seq, count);
      const delivered: DurableMessage = {
        subject: msg.subject,
        data: msg.data.slice(),
        headers: { ...msg.headers },
        seq: msg.seq,
        deliveryCount: count,
      };
      let ok = true;
      durable.inFlight = withConsumerSpan(msg.subject, headerGetter(msg.headers), () => current.handler(delivered)).catch(
        (err) => {
          ok = false;
          logger.warn({ err, subject: msg.subject, seq: msg.seq, deliveryCount: count }, 'durable handler failed; will redeliver');
        },
      );
      await durable.inFlight;
      const maxDeliver = current.maxDeliver ?? 20;
      if (ok || (maxDeliver > 0 && count >= maxDeliver)) {
        if (!ok) logger.error({ subject: msg.subject, seq: msg.seq }, 'durable message dropped after max deliveries');
        durable.cursor = msg.seq;
        durable.deliveries.delete(msg.seq);
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, current.nakDelayMs ?? 200);
        durable.cancelDelay = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      durable.cancelDelay = undefined;
    }
  } finally {
    durable.pumping = false;
  }
}

function createMemoryKv(
  bucketName: string,
  bucket: MemoryBucket,
  assertOpen: () => void,
  closers: Set<() => Promise<void>>,
): KvStore {
  const write = (key: string, value: Uint8Array | null): number => {
    const record: KvRecord = { value, revision: ++bucket.revision };
    bucket.entries.set(key, record);
    for (const watcher of bucket.watchers) watcher(key, record);
    return record.revision;
  };
  const live = (key: string) => {
    const record = bucket.entries.get(key);
    return record && record.value !== null ? record : undefined;
  };

  return {
    bucket: bucketName,
    async get(key) {
      assertOpen();
      const record = live(assertKvKey(key));
      return record ? ({ value: record.value!.slice(), revision: record.revision } satisfies KvEntry) : null;
    },
    async put(key, data) {
      assertOpen();
      return write(assertKvKey(key), copy(data));
    },
    async create(key, data) {
      assertOpen();
      assertKvKey(key);
      if (live(key)) throw new KvConflictError(bucketName, key, 'key already exists');
      return write(key, copy(data));
    },
    async update(key, data, revision) {
      assertOpen();
      assertKvKey(key);
      if (!Number.isInteger(revision) || revision <= 0) {
        throw new TypeError(`update(${key}): revision must be a positive integer, got ${revision}`);
      }
      const current = bucket.entries.get(key);
      if (!current || current.revision !== revision) {
        throw new KvConflictError(bucketName, key, `wrong last revision: expected ${revision}, current ${current?.revision ?? 'none'}`);
      }
      return write(key, copy(data));
    },
    async delete(key) {
      assertOpen();
      assertKvKey(key);
      if (bucket.entries.has(key)) write(key, null);
    },
    async keys() {
      assertOpen();
      return [...bucket.entries].filter(([, record]) => record.value !== null).map(([key]) => key);
    },
    async watch(watchOptions) {
      assertOpen();
      const filter = watchOptions.key ? assertFilterSubject(watchOptions.key) : '>';
      let active = true;
      // Deliveries are queued so the callback never runs re-entrantly inside a writer's call.
      const queue = createSerialQueue(() => {});
      const watcher = (key: string, record: KvRecord) => {
        if (!subjectMatches(filter, key)) return;
        const value = record.value ? record.value.slice() : null;
        queue.push(() => {
          if (active) watchOptions.onEntry(key, value, record.revision);
        });
      };
      if (watchOptions.includeInitial !== false) {
        const current = [...bucket.entries].filter(([, r]) => r.value !== null).sort(([, a], [, b]) => a.revision - b.revision);
        for (const [key, record] of current) watcher(key, record);
      }
      bucket.watchers.add(watcher);
      await queue.idle();
      const stop = async () => {
        active = false;
        bucket.watchers.delete(watcher);
        closers.delete(stop);
      };
      closers.add(stop);
      return { stop } satisfies KvWatcher;
    },
  };
}
