import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  CacheMode,
  CompleteRequestSchema,
  StreamCompleteRequestSchema,
  type CompleteRequest,
  type CompleteResponse,
  type StreamCompleteRequest,
  type StreamCompleteResponseSchema,
} from '@switchyard/contracts';
import { AppError, isAppError, Metadata, status, type CallContext, type StreamSend } from '@switchyard/grpc';
import type { IncomingMessage } from 'node:http';
import { ATTEMPT_CUT_BY_DEADLINE } from '../domain/run-attempts';
import { TRACE_ID_HEADER } from '../handlers/tracing';
import { assignRequestId } from '../handlers/request-id';
import { badRequest, EdgeError } from './errors';

/** The router's two RPC handlers, called in-process by the edge (no extra hop). */
export interface RouterCalls {
  complete(req: CompleteRequest, call: CallContext): Promise<CompleteResponse>;
  streamComplete(req: StreamCompleteRequest, call: CallContext, send: StreamSend<typeof StreamCompleteResponseSchema>): Promise<void>;
  /** The prompt tokens the call's first attempt would reserve, found as a call would (authenticated, validated, fitted); nothing is sent or reserved. */
  countInputTokens(req: CompleteRequest, call: CallContext): number;
}

/** The parts of a router request the HTTP headers decide (Switchyard's own controls). */
export interface HeaderControls {
  apiKey: string | undefined;
  idempotencyKey: string;
  feature: string;
  userId: string;
  cacheMode: CacheMode;
  /** From x-switchyard-timeout-ms: the call's deadline. */
  timeoutMs: number | undefined;
}

/** An UNAVAILABLE this close to the caller's deadline was the deadline (the router keeps a 10 ms answer margin, more when its event loop runs late: then it says so, ATTEMPT_CUT_BY_DEADLINE). */
const DEADLINE_SLACK_MS = 50;

const CACHE_MODES: Record<string, CacheMode> = { bypass: CacheMode.BYPASS, refresh: CacheMode.REFRESH, 'no-store': CacheMode.NO_STORE, 'read-write': CacheMode.READ_WRITE };

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  const s = (Array.isArray(v) ? v[0] : v)?.trim();
  return s ? s : undefined;
}

/** Caller key from `x-api-key` or `Authorization: Bearer <key>` (the same tenant keys as gRPC). */
export function apiKeyOf(req: IncomingMessage): string | undefined {
  const direct = header(req, 'x-api-key');
  if (direct) return direct;
  const auth = header(req, 'authorization');
  if (!auth) return undefined;
  const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
  if (!bearer) throw new EdgeError(401, 'authentication', `authorization: only "Bearer <key>" is accepted (or x-api-key: <key>), got a "${auth.split(/\s/)[0]!.slice(0, 32)}" header`);
  return bearer;
}

export function headerControls(req: IncomingMessage): HeaderControls {
  const cache = header(req, 'x-switchyard-cache');
  const cacheMode = cache === undefined ? CacheMode.UNSPECIFIED : CACHE_MODES[cache.toLowerCase()];
  if (cacheMode === undefined) throw badRequest('x-switchyard-cache', `must be bypass, refresh, no-store or read-write, got "${cache}"`);
  const timeout = header(req, 'x-switchyard-timeout-ms');
  const timeoutMs = timeout === undefined ? undefined : /^\s*\d+\s*$/.test(timeout) ? Number(timeout) : Number.NaN;
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= 3_600_000)) {
    throw badRequest('x-switchyard-timeout-ms', `must be a whole number of milliseconds between 1 and 3600000, got "${timeout}"`);
  }
  return {
    apiKey: apiKeyOf(req),
    idempotencyKey: header(req, 'idempotency-key') ?? '',
    feature: header(req, 'x-switchyard-feature') ?? '',
    userId: header(req, 'x-switchyard-user') ?? '',
    cacheMode,
    timeoutMs,
  };
}

/** The router request fields every dialect fills the same way from the headers. */
export function controlFields(c: HeaderControls, bodyUser: string | undefined) {
  return {
    userId: c.userId || bodyUser || '',
    feature: c.feature,
    idempotencyKey: c.idempotencyKey,
    ...(c.cacheMode !== CacheMode.UNSPECIFIED ? { cachePolicy: { mode: c.cacheMode } } : {}),
  };
}

export type RouterRequestInit = MessageInitShape<typeof CompleteRequestSchema>;

/**
 * A gRPC-like call context for an in-process call: the key as metadata (so
 * authentication is the gRPC path's own), the deadline, a signal aborted by
 * the client leaving or the deadline passing, and response headers (the trace
 * id) handed to `onHeaders`. Runs `fn` inside the caller's traceparent.
 */
export function inProcessCall<T>(
  req: IncomingMessage,
  controls: HeaderControls,
  clientSignal: AbortSignal,
  path: string,
  requestId: string,
  onHeaders: (headers: Record<string, string>) => void,
  fn: (call: CallContext) => Promise<T>,
): Promise<T> {
  const metadata = new Metadata();
  if (controls.apiKey) metadata.set('x-api-key', controls.apiKey);
  assignRequestId(metadata, requestId);
  const deadline = controls.timeoutMs !== undefined ? new Date(Date.now() + controls.timeoutMs) : undefined;
  const controller = new AbortController();
  const onClientGone = () => controller.abort(clientSignal.reason);
  clientSignal.addEventListener('abort', onClientGone, { once: true });
  const timer = deadline ? setTimeout(() => controller.abort(new Error(`deadline exceeded: ${path}`)), controls.timeoutMs) : undefined;
  let headersSent = false;
  const call: CallContext = {
    metadata,
    deadline,
    signal: controller.signal,
    peer: `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`,
    path,
    sendHeaders: (h) => {
      if (headersSent) return;
      headersSent = true;
      onHeaders(h);
    },
  };
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  return context
    .with(parent, () => fn(call))
    .catch((err: unknown) => {
      // The last attempt timed out against the caller's deadline and nothing was left to try: the
      // router says "every candidate failed"; the caller's own deadline is what ended it (504).
      const cut = isAppError(err) && err.details.errorInfo?.metadata?.stopped_because === ATTEMPT_CUT_BY_DEADLINE;
      if (deadline && isAppError(err) && err.code === status.UNAVAILABLE && (cut || Date.now() >= deadline.getTime() - DEADLINE_SLACK_MS)) {
        throw new AppError(status.DEADLINE_EXCEEDED, `deadline of ${controls.timeoutMs} ms (x-switchyard-timeout-ms) passed: ${err.message}`, err.details);
      }
      throw err;
    })
    .finally(() => {
      clientSignal.removeEventListener('abort', onClientGone);
      if (timer) clearTimeout(timer);
    });
}

export const completeRequest = (init: RouterRequestInit) => create(CompleteRequestSchema, init);
export const streamCompleteRequest = (init: RouterRequestInit) => create(StreamCompleteRequestSchema, init as MessageInitShape<typeof StreamCompleteRequestSchema>);
export { TRACE_ID_HEADER };
