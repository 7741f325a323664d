import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV } from '@nats-io/kv';
import { connect, headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { withConsumerSpan, withProducerSpan } from '@switchyard/telemetry';
import {
  KvConflictError,
  silentLogger,
  type BusLogger,
  type BusStatus,
  type Consumer,
  type EventBus,
  type Headers,
  type KvStore,
  type KvWatcher,
  type Subscription,
} from './event-bus';
import { createSerialQueue } from './serial-queue';
import { assertBucket, assertFilterSubject, assertKvKey, assertPublishSubject } from './subjects';

export interface NatsEventBusOptions {
  /** Server URL(s). Either this or `nc`. */
  url?: string | string[];
  /** An existing connection; the bus then does not close it on `close()`. */
  nc?: NatsConnection;
  /** Connection name shown by the server (service name + replica). */
  name: string;
  logger?: BusLogger;
  /** Extra nats.js connect options (override the defaults below). */
  connectOptions?: Partial<NodeConnectionOptions>;
  /** Timeout of JetStream API calls and durable publishes. Default 5 s. */
  requestTimeoutMs?: number;
}

const DEFAULT_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const API_CODES = { streamNotFound: 10059, consumerNotFound: 10014, wrongLastSequence: 10071 } as const;

function apiCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

function toNatsHeaders(record: Headers): MsgHdrs | undefined {
  const keys = Object.keys(record);
  if (keys.length === 0) return undefined;
  const h = natsHeaders();
  for (const key of keys) h.set(key, record[key]!);
  return h;
}

function fromNatsHeaders(h: MsgHdrs | undefined): Headers {
  const out: Headers = {};
  if (!h) return out;
  for (const key of h.keys()) out[key] = h.get(key);
  return out;
}

/**
 * EventBus over NATS core (events), JetStream (durable outcomes) and JetStream
 * KV (replicated state). Reconnects forever by default: a service keeps running
 * on its last known state while NATS is away and watches resume on reconnect.
 */
export async function createNatsEventBus(options: NatsEventBusOptions): Promise<EventBus> {
  if (!options?.name) throw new TypeError('createNatsEventBus: name is required');
  if (!options.url && !options.nc) throw new TypeError('createNatsEventBus: url or nc is required');
  const logger = options.logger ?? silentLogger;
  const timeout = options.requestTimeoutMs ?? 5_000;
  const owned = !options.nc;
  const nc =
    options.nc ??
    (await connect({
      servers: options.url,
      name: options.name,
      // Never give up: NATS outages are survived with local state, then resynced.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 10_000,
      timeout: 5_000,
      // Every request (the router's durable publish of each outcome is one) would otherwise build two Errors up front for their stacks.
      noAsyncTraces: true,
      ...options.connectOptions,
    }));

  let status: BusStatus = nc.isClosed() ? 'closed' : 'connected';
  const listeners = new Set<(status: BusStatus) => void>();
  const setStatus = (next: BusStatus) => {
    if (next === status) return;
    status = next;
    logger.info({ bus: options.name, status }, `nats ${status}`);
    for (const listener of listeners) {
      try {
        listener(status);
      } catch (err) {
        logger.error({ err }, 'bus status listener threw');
      }
    }
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') setStatus('disconnected');
      else if (s.type === 'reconnecting') setStatus('reconnecting');
      else if (s.type === 'reconnect') setStatus('connected');
      else if (s.type === 'close') setStatus('closed');
    }
  })().catch(() => {});
  void nc.closed().then(() => setStatus('closed'));

  const js: JetStreamClient = jetstream(nc, { timeout });
  let jsmPromise: Promise<JetStreamManager> | undefined;
  const jsm = () => (jsmPromise ??= jetstreamManager(nc, { timeout }).catch((err) => {
    jsmPromise = undefined;
    throw err;
  }));
  const kvm = new Kvm(js);
  const closers = new Set<() => Promise<void>>();
  const assertOpen = () => {
    if (status === 'closed') throw new Error(`event bus ${options.name} is closed`);
  };

  const bus: EventBus = {
    name: options.name,

    async publish(subject, data, publishOptions = {}) {
      assertOpen();
      assertPublishSubject(subject);
      await withProducerSpan(subject, (traceHeaders) => {
        nc.publish(subject, data, { headers: toNatsHeaders({ ...publishOptions.headers, ...traceHeaders }) });
      });
    },

    async subscribe(subject, handler) {
      assertOpen();
      assertFilterSubject(subject);
      const queue = createSerialQueue((err) => logger.error({ err, subject }, 'event handler failed'));
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return logger.warn({ err, subject }, 'subscription error');
          const message = { subject: msg.subject, data: msg.data, headers: fromNatsHeaders(msg.headers) };
          queue.push(() => withConsumerSpan(msg.subject, (k) => message.headers[k], () => handler(message)));
        },
      });
      // The interest is registered at the server once flush returns.
      await nc.flush();
      const unsubscribe = async () => {
        closers.delete(unsubscribe);
        if (!sub.isClosed()) sub.unsubscribe();
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
      const manager = await jsm();
      const maxAge = nanos(spec.maxAgeMs ?? DEFAULT_MAX_AGE_MS);
      try {
        const info = await manager.streams.info(spec.name);
        const same =
          info.config.max_age === maxAge &&
          info.config.subjects.length === spec.subjects.length &&
          spec.subjects.every((s) => info.config.subjects.includes(s));
        if (!same) await manager.streams.update(spec.name, { ...info.config, subjects: spec.subjects, max_age: maxAge });
      } catch (err) {
        if (apiCode(err) !== API_CODES.streamNotFound) throw err;
        await manager.streams.add({
          name: spec.name,
          subjects: spec.subjects,
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          max_age: maxAge,
          duplicate_window: nanos(2 * 60 * 1000),
        });
      }
    },

    async publishDurable(subject, data, publishOptions = {}) {
      assertOpen();
      assertPublishSubject(subject);
      return withProducerSpan(subject, async (traceHeaders) => {
        const ack = await js.publish(subject, data, {
          headers: toNatsHeaders({ ...publishOptions.headers, ...traceHeaders }),
          ...(publishOptions.msgId !== undefined ? { msgID: publishOptions.msgId } : {}),
          timeout,
        });
        return { seq: ack.seq, duplicate: ack.duplicate };
      });
    },

    async consume(consumeOptions) {
      assertOpen();
      const { stream, durable, handler } = consumeOptions;
      if (!stream) throw new TypeError('consume: stream is required');
      if (!durable) throw new TypeError('consume: durable is required');
      const filter = consumeOptions.filterSubject ? assertFilterSubject(consumeOptions.filterSubject) : undefined;
      const nakDelayMs = consumeOptions.nakDelayMs ?? 200;
      const manager = await jsm();
      const config = {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(consumeOptions.ackWaitMs ?? 30_000),
        max_deliver: consumeOptions.maxDeliver ?? 20,
        ...(filter ? { filter_subject: filter } : {}),
      };
      try {
        const info = await manager.consumers.info(stream, durable);
        if ((info.config.filter_subject ?? undefined) !== filter) {
          throw new Error(`consume: durable ${durable} exists with filter ${info.config.filter_subject ?? '(none)'}, not ${filter ?? '(none)'}`);
        }
      } catch (err) {
        if (apiCode(err) === API_CODES.streamNotFound) {
          throw new Error(`consume: stream ${stream} does not exist (call ensureStream first)`, { cause: err });
        }
        if (apiCode(err) !== API_CODES.consumerNotFound) throw err;
        await manager.consumers.add(stream, config);
      }
      const consumer = await js.consumers.get(stream, durable);
      const messages = await consumer.consume({ max_messages: 16 });
      let stopping = false;

      const handle = async (m: JsMsg) => {
        if (stopping) {
          // Buffered but not handled: give it back now instead of after ack_wait.
          m.nak();
          return;
        }
        const message = {
          subject: m.subject,
          data: m.data,
          headers: fromNatsHeaders(m.headers),
          seq: m.seq,
          deliveryCount: m.info.deliveryCount,
        };
        try {
          await withConsumerSpan(m.subject, (k) => message.headers[k], () => handler(message));
        } catch (err) {
          logger.warn({ err, subject: m.subject, seq: m.seq, deliveryCount: message.deliveryCount }, 'durable handler failed; will redeliver');
          m.nak(nakDelayMs);
          return;
        }
        // A plain ack, not ackAck: a confirmed ack is one more request round trip per
        // message (and nats-core builds an Error with its stack at the end of every
        // request), which was 5 % of the breaker's CPU at saturation; and an ack that
        // is lost is redelivered whether or not we waited for it (at-least-once,
        // handlers are idempotent). Closing the connection drains acks still buffered.
        try {
          m.ack();
        } catch (err) {
          logger.warn({ err, subject: m.subject, seq: m.seq }, 'ack not sent; the message will be redelivered');
        }
      };
      const loop = (async () => {
        for await (const m of messages) await handle(m);
      })().catch((err) => logger.error({ err, stream, durable }, 'durable consumer stopped'));

      const stop = async () => {
        closers.delete(stop);
        stopping = true;
        messages.stop();
        await loop;
      };
      closers.add(stop);
      return { stop } satisfies Consumer;
    },

    async kv(bucketName) {
      assertOpen();
      assertBucket(bucketName);
      const kv = await kvm.create(bucketName, { history: 1 });
      return createNatsKv(bucketName, kv, assertOpen, closers, logger);
    },

    status: () => status,

    onStatusChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      if (status === 'closed' && nc.isClosed()) return;
      await Promise.all([...closers].map((close) => close().catch(() => {})));
      if (!owned) return;
      try {
        // Drain flushes pending publishes; when the server is gone there is nothing to drain.
        if (status === 'connected') await nc.drain();
        else await nc.close();
      } catch {
        await nc.close();
      }
      setStatus('closed');
    },
  };
  return bus;
}

function conflict(bucket: string, key: string, err: unknown): unknown {
  if (apiCode(err) === API_CODES.wrongLastSequence || /wrong last sequence/i.test(String((err as Error)?.message))) {
    return new KvConflictError(bucket, key, (err as Error).message, { cause: err });
  }
  return err;
}

function createNatsKv(
  bucket: string,
  kv: KV,
  assertOpen: () => void,
  closers: Set<() => Promise<void>>,
  logger: BusLogger,
): KvStore {
  return {
    bucket,
    async get(key) {
      assertOpen();
      const entry = await kv.get(assertKvKey(key));
      if (!entry || entry.operation !== 'PUT') return null;
      return { value: entry.value, revision: entry.revision };
    },
    async put(key, data) {
      assertOpen();
      return kv.put(assertKvKey(key), data);
    },
    async create(key, data) {
      assertOpen();
      try {
        return await kv.create(assertKvKey(key), data);
      } catch (err) {
        throw conflict(bucket, key, err);
      }
    },
    async update(key, data, revision) {
      assertOpen();
      assertKvKey(key);
      if (!Number.isInteger(revision) || revision <= 0) {
        throw new TypeError(`update(${key}): revision must be a positive integer, got ${revision}`);
      }
      try {
        return await kv.update(key, data, revision);
      } catch (err) {
        throw conflict(bucket, key, err);
      }
    },
    async delete(key) {
      assertOpen();
      await kv.delete(assertKvKey(key));
    },
    async keys() {
      assertOpen();
      // kv.keys() reads until nothing is pending, so a key written meanwhile comes twice.
      const out = new Set<string>();
      for await (const key of await kv.keys()) out.add(key);
      return [...out];
    },
    async watch(watchOptions) {
      assertOpen();
      const key = watchOptions.key ? assertFilterSubject(watchOptions.key) : '>';
      const includeInitial = watchOptions.includeInitial !== false;
      // An empty bucket delivers no initial entry that could mark the end of the initial set.
      const empty = !includeInitial || (await kv.status()).values === 0;
      const iter = await kv.watch({ key, include: includeInitial ? KvWatchInclude.LastValue : KvWatchInclude.UpdatesOnly });
      let initialDone = empty;
      let markReady!: () => void;
      const ready = new Promise<void>((resolve) => (markReady = resolve));
      if (initialDone) markReady();
      const loop = (async () => {
        for await (const entry of iter) {
          const deleted = entry.operation !== 'PUT';
          // A key deleted before we started is simply absent from the replica.
          if (initialDone || !deleted) {
            try {
              watchOptions.onEntry(entry.key, deleted ? null : entry.value, entry.revision);
            } catch (err) {
              logger.error({ err, bucket, key: entry.key }, 'kv watch callback threw');
            }
          }
          if (!initialDone && (entry.delta === 0 || entry.isUpdate)) {
            initialDone = true;
            markReady();
          }
        }
      })().finally(markReady);
      await ready;
      const stop = async () => {
        closers.delete(stop);
        iter.stop();
        await loop.catch(() => {});
      };
      closers.add(stop);
      return { stop } satisfies KvWatcher;
    },
  };
}
