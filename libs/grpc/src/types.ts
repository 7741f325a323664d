import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { Metadata } from '@grpc/grpc-js';

/** What a handler knows about the call besides the request. */
export interface CallContext {
  /** Request metadata (headers) as sent by the client. */
  metadata: Metadata;
  /** The caller's deadline, or undefined when it set none. */
  deadline: Date | undefined;
  /** Aborts when the client cancels, the deadline passes or the server force-closes the call. */
  signal: AbortSignal;
  /** Remote address, e.g. "127.0.0.1:53124". */
  peer: string;
  /** Full method path, e.g. "/switchyard.budget.v1.BudgetService/Reserve". */
  path: string;
  /**
   * Sends response headers (initial metadata) now, e.g. a trace id the caller
   * can quote. Only the first call has an effect; later ones are ignored.
   */
  sendHeaders(headers: Record<string, string>): void;
}

/** Sends one message on a server stream; resolves when the transport accepted it (backpressure). */
export type StreamSend<O extends DescMessage> = (message: MessageInitShape<O>) => Promise<void>;

/** Unary handler: resolve with the response (a message or its init shape), or throw. */
export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

/**
 * Server-streaming handler: either an async generator that yields responses, or
 * a function that calls `send` and resolves when done. Ending normally ends the
 * stream with OK; throwing ends it with the mapped status.
 */
export type ServerStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
  send: StreamSend<O>,
) => AsyncIterable<MessageInitShape<O>> | Promise<void>;

type HandlerFor<M> = M extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? UnaryHandler<I, O>
  : M extends { methodKind: 'server_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? ServerStreamingHandler<I, O>
    : never;

/** One handler per RPC of a generated service, keyed by the method's local name (e.g. `getBudget`). */
export type ServiceImplementation<S extends GenServiceMethods> = {
  [K in keyof S]: HandlerFor<S[K]>;
};

/** Implementation type of a generated service const, e.g. `ImplementationOf<typeof BudgetService>`. */
export type ImplementationOf<Svc> = Svc extends GenService<infer S> ? ServiceImplementation<S> : never;

/**
 * Which credential may call a method of an internal service once the server
 * has tokens (`GrpcServerOptions.auth`):
 * - `router`: the internal token only — the per-call RPCs (Acquire, Reserve, Lookup…);
 * - `operator`: the operator token only — calls that change state by hand
 *   (ForceState, ClearUnavailable, Invalidate), so a leaked router credential
 *   cannot force circuits or wipe the cache;
 * - `either`: read-only views (GetHealth, GetQuota, GetBudget…).
 */
export type AccessLevel = 'router' | 'operator' | 'either';

/** Access level per RPC, keyed by the method's local name; unlisted methods are `router`. */
export type AccessTable<S extends GenServiceMethods> = Partial<Record<keyof S & string, AccessLevel>>;

/** A service to serve and its implementation. */
export interface ServiceRegistration<S extends GenServiceMethods = GenServiceMethods> {
  service: GenService<S>;
  // NoInfer: the service alone decides S, so a mismatched implementation is an error.
  implementation: NoInfer<ServiceImplementation<S>>;
  /** Who may call what (see AccessLevel); default `router` for every method. */
  access?: NoInfer<AccessTable<S>>;
}

/**
 * Pairs a service with its implementation, type-checking the implementation
 * (and the access table's method names) against it.
 */
export function serviceRegistration<S extends GenServiceMethods>(
  service: GenService<S>,
  implementation: ServiceImplementation<S>,
  access?: AccessTable<S>,
): ServiceRegistration {
  return { service, implementation, ...(access ? { access } : {}) } as unknown as ServiceRegistration;
}

/** pino-compatible subset; the adapter logs handler failures and lifecycle through it. */
export interface GrpcLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of one client call. */
export interface CallOptions {
  /** Deadline relative to now; overrides the client's defaultDeadlineMs. */
  deadlineMs?: number;
  /** Absolute deadline; wins over deadlineMs. */
  deadline?: Date;
  /** Request metadata (e.g. authorization). */
  metadata?: Record<string, string>;
  /** Cancels the call (status CANCELLED). */
  signal?: AbortSignal;
}

type ClientMethodFor<M> = M extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends { methodKind: 'server_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
    : never;

/** Typed promise client: one method per RPC (local names, e.g. `getBudget`), plus `close()` and `connect()`. */
export type Client<S extends GenServiceMethods> = {
  [K in keyof S]: ClientMethodFor<S[K]>;
} & {
  close(): void;
  /**
   * Connects now rather than on the first call (which would otherwise pay
   * name resolution and the TCP and HTTP/2 handshakes inside its deadline);
   * resolves once the channel is ready, rejects if it is not within `deadlineMs`.
   */
  connect(deadlineMs: number): Promise<void>;
};

/** @internal method descriptor with the fields the adapters need. */
export type AnyMethod = DescMethod;
