import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageInitShape } from '@bufbuild/protobuf';
import {
  Metadata,
  Server,
  ServerCredentials,
  type ChannelOptions,
  type Deadline,
  type MethodDefinition,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { unavailable, type AppError } from './app-error';
import { toServerError } from './error-status';
import { createHealthRegistry } from './health';
import { type AccessGuard, type InternalAuth, createAccessGuard, exposureProblem } from './internal-token';
import { addReflection } from './reflection';
import { refuseOnArrival, type ArrivalCheck } from './refuse-on-arrival';
import type { AccessLevel, CallContext, GrpcLogger, ServiceRegistration } from './types';
import { decodeRequest, rejectUndecodable } from './undecodable-request';

export interface GrpcServerOptions<T extends GenServiceMethods[] = GenServiceMethods[]> {
  /** Interface to bind; default "0.0.0.0" (all IPv4 interfaces, as containers need). */
  host?: string;
  /** Port to bind; 0 picks a free one (read it back from the returned `port`). */
  port: number;
  services: { [K in keyof T]: ServiceRegistration<T[K]> };
  logger?: GrpcLogger;
  /** Serve grpc.reflection v1 + v1alpha; default true. */
  reflection?: boolean;
  /** Server credentials; default insecure (internal network, see DESIGN "Security"). */
  credentials?: ServerCredentials;
  /** grpc-js channel options, e.g. max message sizes. */
  channelOptions?: ChannelOptions;
  /**
   * Marks an internal service (limiter, breaker, budget, cache) and the tokens
   * its callers present as metadata `x-switchyard-internal-token`: each call
   * must carry the one its method's access level admits (see AccessLevel;
   * UNAUTHENTICATED / PERMISSION_DENIED otherwise). Without an internal token
   * the server refuses to bind anything but loopback. Health and reflection
   * stay open for probes. Omitted (the router, a public edge that
   * authenticates its callers itself): no checks.
   */
  auth?: InternalAuth;
  /**
   * Checked as each stream arrives, before grpc-js reads it: an AppError
   * answers the stream at once with that status (a trailers-only response),
   * and no handler, interceptor or per-call context runs for it. For a load
   * shedder's refusal, which must cost next to nothing (refuse-on-arrival.ts).
   */
  refuseOnArrival?: ArrivalCheck;
}

export interface GrpcServerHandle {
  /** The bound port (useful with port 0). */
  port: number;
  /** The underlying grpc-js server. */
  server: Server;
  /** Sets the health status of every service and of the server (""), or of one service. */
  setServing(serving: boolean, service?: string): void;
  /**
   * Graceful stop: health NOT_SERVING first (Watch streams see it, then end),
   * refuse new calls, let in-flight calls finish, force-close after graceMs.
   */
  shutdown(graceMs?: number): Promise<void>;
}

const consoleLogger: GrpcLogger = {
  info: () => {},
  warn: (obj, msg) => console.warn(msg ?? '', obj),
  error: (obj, msg) => console.error(msg ?? '', obj),
};

function deadlineToDate(deadline: Deadline): Date | undefined {
  if (deadline instanceof Date) return deadline;
  return Number.isFinite(deadline) ? new Date(deadline) : undefined;
}

/** Builds the per-call context and tears it down when the call ends. */
function openContext(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, path: string) {
  const controller = new AbortController();
  const deadline = deadlineToDate(call.getDeadline());
  const onCancelled = () => controller.abort(new Error(`call cancelled: ${path}`));
  call.on('cancelled', onCancelled);
  // grpc-js answers DEADLINE_EXCEEDED itself; the timer makes handlers stop working too.
  const timer =
    deadline === undefined
      ? undefined
      : setTimeout(() => controller.abort(new Error(`deadline exceeded: ${path}`)), Math.max(0, deadline.getTime() - Date.now()));
  timer?.unref?.();
  let headersSent = false;
  const sendHeaders = (headers: Record<string, string>) => {
    if (headersSent) return;
    headersSent = true;
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
    call.sendMetadata(metadata);
  };
  const ctx: CallContext = { metadata: call.metadata, deadline, signal: controller.signal, peer: call.getPeer(), path, sendHeaders };
  const close = () => {
    if (timer) clearTimeout(timer);
    call.removeListener('cancelled', onCancelled);
  };
  return { ctx, close, abort: (reason: unknown) => controller.abort(reason) };
}

/**
 * Calls still running when a shutdown's grace ends: each is answered with
 * `reason` (UNAVAILABLE: call again, another replica will take it) and its
 * handler's signal aborted, before the server forces its connections closed.
 * Without it grpc-js ends them CANCELLED, which callers read as their own
 * cancellation and do not retry.
 */
type InFlightCalls = Set<(reason: AppError) => void>;

/** How long the answers to interrupted calls get to leave before the connections are forced closed. */
const INTERRUPTED_ANSWER_MS = 250;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value != null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

/** Writes one message honouring backpressure; rejects if the call is cancelled meanwhile. */
function writeWithBackpressure(call: ServerWritableStream<unknown, unknown>, message: unknown, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (call.write(message)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      call.removeListener('drain', onDrain);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onDrain = () => done();
    const onAbort = () => done(signal.reason);
    call.once('drain', onDrain);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function methodDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  const input: DescMessage = method.input;
  const output: DescMessage = method.output;
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: false,
    responseStream: method.methodKind === 'server_streaming',
    originalName: method.localName,
    requestSerialize: (value) => Buffer.from(toBinary(input, create(input, value as MessageInitShape<DescMessage>))),
    requestDeserialize: (bytes) => decodeRequest(input, bytes),
    responseSerialize: (value) => Buffer.from(toBinary(output, create(output, value as MessageInitShape<DescMessage>))),
    responseDeserialize: (bytes) => fromBinary(output, bytes),
  };
}

/** grpc-js service definition for a protobuf-es service (also used by the client). */
export function toServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) definition[method.name] = methodDefinition(method);
  return definition as ServiceDefinition;
}

type AnyHandler = (request: unknown, ctx: CallContext, send: (m: unknown) => Promise<void>) => unknown;

function unaryHandler(path: string, handler: AnyHandler, logger: GrpcLogger, inFlight: InFlightCalls) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    const { ctx, close, abort } = openContext(call, path);
    let answered = false;
    const answer: sendUnaryData<unknown> = (err, response) => {
      if (answered) return;
      answered = true;
      callback(err, response);
    };
    const interrupt = (reason: AppError) => {
      answer(toServerError(reason, path, logger));
      abort(reason);
    };
    inFlight.add(interrupt);
    Promise.resolve()
      .then(() => handler(call.request, ctx, () => Promise.reject(new Error('send is only available on streaming methods'))))
      .then(
        (response) => answer(null, response),
        (err: unknown) => answer(toServerError(err, path, logger, ctx.signal.aborted)),
      )
      .finally(() => {
        inFlight.delete(interrupt);
        close();
      });
  };
}

function serverStreamingHandler(path: string, handler: AnyHandler, logger: GrpcLogger, inFlight: InFlightCalls) {
  return (call: ServerWritableStream<unknown, unknown>) => {
    const { ctx, close, abort } = openContext(call, path);
    const interrupt = (reason: AppError) => {
      if (ctx.signal.aborted) return;
      call.emit('error', toServerError(reason, path, logger));
      abort(reason);
    };
    inFlight.add(interrupt);
    const send = (message: unknown) => writeWithBackpressure(call, message, ctx.signal);
    (async () => {
      const result = handler(call.request, ctx, send);
      if (isAsyncIterable(result)) {
        // for-await calls the generator's return() on break/throw, running its finally blocks.
        for await (const message of result) {
          if (ctx.signal.aborted) break;
          await send(message);
        }
      } else {
        await result;
      }
    })()
      .then(
        () => {
          if (!ctx.signal.aborted) call.end();
        },
        (err: unknown) => {
          // After a cancel nobody is listening; the abort itself is not an error worth logging.
          if (!ctx.signal.aborted) call.emit('error', toServerError(err, path, logger));
        },
      )
      .finally(() => {
        inFlight.delete(interrupt);
        close();
      });
  };
}

function buildImplementation(registration: ServiceRegistration, logger: GrpcLogger, inFlight: InFlightCalls, guard?: AccessGuard): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  const handlers = registration.implementation as unknown as Record<string, AnyHandler | undefined>;
  const access = (registration.access ?? {}) as Record<string, AccessLevel | undefined>;
  const localNames = new Set(registration.service.methods.map((m) => m.localName));
  for (const [name, level] of Object.entries(access)) {
    if (!localNames.has(name)) throw new Error(`services[${registration.service.typeName}].access.${name}: no such method`);
    if (level !== 'router' && level !== 'operator' && level !== 'either') {
      throw new Error(`services[${registration.service.typeName}].access.${name}: must be "router", "operator" or "either", got ${JSON.stringify(level)}`);
    }
  }
  for (const method of registration.service.methods) {
    const raw = rejectUndecodable(handlers[method.localName]);
    const level = access[method.localName] ?? 'router';
    const handler: AnyHandler | undefined =
      guard && typeof raw === 'function'
        ? (req, ctx, send) => {
            guard(ctx, level);
            return raw(req, ctx, send);
          }
        : raw;
    const path = `/${registration.service.typeName}/${method.name}`;
    if (typeof handler !== 'function') {
      throw new Error(`services[${registration.service.typeName}].implementation.${method.localName}: handler missing`);
    }
    if (method.methodKind === 'unary') impl[method.name] = unaryHandler(path, handler, logger, inFlight);
    else if (method.methodKind === 'server_streaming') impl[method.name] = serverStreamingHandler(path, handler, logger, inFlight);
    else throw new Error(`${path}: ${method.methodKind} methods are not supported by this adapter`);
  }
  return impl;
}

/**
 * Serves protobuf-es services over grpc-js, plus grpc.health.v1 and server
 * reflection, bound and ready when the promise resolves.
 */
export async function createGrpcServer<const T extends GenServiceMethods[]>(options: GrpcServerOptions<T>): Promise<GrpcServerHandle> {
  const logger = options.logger ?? consoleLogger;
  const registrations = options.services as unknown as ServiceRegistration[];
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw new Error(`port: must be an integer 0..65535, got ${String(options.port)}`);
  }
  const names = registrations.map((r) => r.service.typeName);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new Error(`services: ${duplicate} registered twice`);

  const host = options.host ?? '0.0.0.0';
  const exposed = options.auth && exposureProblem(host, options.auth);
  if (exposed) throw new Error(`services ${names.join(', ')}: ${exposed}`);
  const guard = options.auth && createAccessGuard(options.auth);

  const server = new Server(options.channelOptions);
  if (options.refuseOnArrival) refuseOnArrival(server, options.refuseOnArrival);
  const health = createHealthRegistry(names);
  const inFlight: InFlightCalls = new Set();
  for (const registration of registrations) {
    server.addService(toServiceDefinition(registration.service), buildImplementation(registration, logger, inFlight, guard));
  }
  server.addService(toServiceDefinition(health.registration.service), buildImplementation(health.registration, logger, inFlight));
  if (options.reflection ?? true) {
    addReflection(server, [...registrations, health.registration].map((r) => r.service));
  }

  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${options.port}` : `${host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, options.credentials ?? ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );

  let stopping: Promise<void> | undefined;
  return {
    port,
    server,
    setServing: (serving, service) => health.setServing(serving, service),
    shutdown(graceMs = 10_000) {
      stopping ??= new Promise<void>((resolve) => {
        health.setServing(false);
        health.closeWatchers();
        let force = setTimeout(() => {
          logger.warn({ graceMs, calls: inFlight.size }, 'gRPC graceful shutdown timed out; answering the calls still running, then forcing');
          const reason = unavailable(`server shutting down: the call was still running after the ${graceMs} ms grace period; call again (another replica will take it)`, 0);
          for (const interrupt of [...inFlight]) interrupt(reason);
          // Their answers end the calls, and so the graceful shutdown; a peer that
          // does not read them is cut after INTERRUPTED_ANSWER_MS.
          force = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, INTERRUPTED_ANSWER_MS);
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return stopping;
    },
  };
}
