/**
 * The one abstraction services use for events and replicated state. Two
 * implementations honour the same contract (test/event-bus.contract.ts):
 * NATS/JetStream for production and an in-process one for the embedded demo.
 */

export type Headers = Record<string, string>;

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** Message headers, including W3C `traceparent` when the publisher had an active span. */
  headers: Headers;
}

export interface DurableMessage extends BusMessage {
  /** Stream sequence of the message. */
  seq: number;
  /** 1 on first delivery, higher on redelivery (after a nak, an ack timeout or a consumer restart). */
  deliveryCount: number;
}

export interface PublishOptions {
  headers?: Headers;
}

export interface DurablePublishOptions extends PublishOptions {
  /** De-duplication id: a retried publish with the same id is stored once. */
  msgId?: string;
}

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** Messages older than this are discarded. Default 24 h. */
  maxAgeMs?: number;
}

export interface ConsumeOptions {
  stream: string;
  /** Durable consumer name: consumers with the same name share one cursor (and the work). */
  durable: string;
  /** Only messages on this subject (wildcards allowed). Default: the whole stream. */
  filterSubject?: string;
  /**
   * Acked when it resolves; nak'ed (redelivered after `nakDelayMs`) when it throws.
   * Delivery is at-least-once: make handlers idempotent.
   */
  handler(msg: DurableMessage): Promise<void> | void;
  /** Delay before a nak'ed message is redelivered. Default 200 ms. */
  nakDelayMs?: number;
  /** Unacked messages are redelivered after this long. Default 30 s. */
  ackWaitMs?: number;
  /** Give up on a message after this many deliveries (-1 = never). Default 20. */
  maxDeliver?: number;
}

export interface Consumer {
  stop(): Promise<void>;
}

export interface KvEntry {
  value: Uint8Array;
  revision: number;
}

export interface KvWatchOptions {
  /** Called for every current key first (if `includeInitial`), then on every change; `value` null = deleted. */
  onEntry(key: string, value: Uint8Array | null, revision: number): void;
  /** Deliver the current value of every key before changes. Default true. */
  includeInitial?: boolean;
  /** Key filter (wildcards as in subjects). Default all keys. */
  key?: string;
}

export interface KvWatcher {
  stop(): Promise<void>;
}

export interface KvStore {
  readonly bucket: string;
  get(key: string): Promise<KvEntry | null>;
  /** Unconditional write; returns the new revision. */
  put(key: string, data: Uint8Array): Promise<number>;
  /** Writes only if the key does not exist (or was deleted); throws `KvConflictError` otherwise. */
  create(key: string, data: Uint8Array): Promise<number>;
  /** Compare-and-set: writes only if the key is at `revision`; throws `KvConflictError` otherwise. */
  update(key: string, data: Uint8Array, revision: number): Promise<number>;
  delete(key: string): Promise<void>;
  /** Every key that holds a value, each once, even while keys are being written. */
  keys(): Promise<string[]>;
  /**
   * Starts a watcher; the promise resolves once the current values have been
   * delivered, so a replica is complete when it resolves.
   */
  watch(options: KvWatchOptions): Promise<KvWatcher>;
}

export type BusStatus = 'connected' | 'reconnecting' | 'disconnected' | 'closed';

export interface EventBus {
  readonly name: string;
  /** Fire-and-forget publish (core NATS) inside a PRODUCER span, trace context in headers. */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<void>;
  /**
   * Subscribes (wildcards allowed); each handler call runs in a CONSUMER span
   * parented by the publisher's span. Resolves once the server knows the interest.
   */
  subscribe(subject: string, handler: (msg: BusMessage) => Promise<void> | void): Promise<Subscription>;
  /** Creates the stream, or updates its subjects if it exists. Idempotent. */
  ensureStream(spec: StreamSpec): Promise<void>;
  /** Persists the message in its stream and waits for the ack; throws if no stream takes the subject. */
  publishDurable(subject: string, data: Uint8Array, options?: DurablePublishOptions): Promise<{ seq: number; duplicate: boolean }>;
  /** At-least-once consumption through a durable consumer. */
  consume(options: ConsumeOptions): Promise<Consumer>;
  /** Opens (creating if needed) a KV bucket keeping the latest value per key. */
  kv(bucket: string): Promise<KvStore>;
  status(): BusStatus;
  /** Calls `listener` on every status change; returns an unsubscribe function. */
  onStatusChange(listener: (status: BusStatus) => void): () => void;
  /** Drains subscriptions and consumers, then closes. */
  close(): Promise<void>;
}

/** A `create` found the key, or an `update` found another revision. */
export class KvConflictError extends Error {
  readonly code = 'KV_CONFLICT';
  constructor(
    readonly bucket: string,
    readonly key: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${bucket}/${key}: ${message}`, options);
    this.name = 'KvConflictError';
  }
}

export function isKvConflictError(err: unknown): err is KvConflictError {
  return err instanceof KvConflictError;
}

/** Minimal logger shape (pino-compatible) so the bus can report handler failures. */
export interface BusLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export const silentLogger: BusLogger = { warn() {}, error() {}, info() {} };
