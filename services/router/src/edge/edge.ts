import type { SwitchyardConfig } from '@switchyard/config';
import type { CompleteResponse, Final } from '@switchyard/contracts';
import { Metadata } from '@switchyard/grpc';
import { authenticate, authorizeRoute } from '../handlers/auth';
import type { KeyOwner, RouterLogger } from '../router-context';
import { answerHeaders } from './answer-headers';
import { anthropicEventWriter, countTokensRequest, messageBody, parseMessages, sendAnthropicError } from './anthropic';
import { badRequest, EdgeError, toEdgeError } from './errors';
import { sendJson, startEdgeServer, type EdgeRequest, type EdgeRoute, type EdgeServer } from './http-server';
import { chatCompletionBody, openAiChunkWriter, parseChatCompletion, sendOpenAiError } from './openai';
import { completeRequest, headerControls, inProcessCall, streamCompleteRequest, TRACE_ID_HEADER, type HeaderControls, type RouterCalls, type RouterRequestInit } from './router-call';

export interface EdgeDeps {
  gateway: SwitchyardConfig;
  keys: ReadonlyMap<string, KeyOwner>;
  calls: RouterCalls;
  /** Throws the overload refusal when the router would shed a call now: checked before a body is read. */
  refuseWhenFull?(): void;
  /** Whether every peer answers (readiness); names the ones that do not. */
  peersReady(): Promise<string[]>;
  logger: Pick<RouterLogger, 'error'>;
}

export interface EdgeOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

const SWITCHYARD_TRAILERS = ['x-switchyard-served-by', 'x-switchyard-attempts', 'x-switchyard-cache', 'x-switchyard-degraded', 'x-switchyard-degraded-reason', 'x-switchyard-cost-micros', 'x-switchyard-request-id'];

/** What a dialect's stream writer turns into SSE text. */
interface StreamWriter {
  /** The stream's opening; `inputTokens` from the router's first delta (Delta.input_tokens). */
  first(inputTokens: number): string;
  text(text: string): string;
  toolCall(t: { index: number; id: string; name: string; argumentsFragment: string }): string;
  final(f: Final): string;
}

function owner(deps: EdgeDeps, controls: HeaderControls): KeyOwner {
  const metadata = new Metadata();
  if (controls.apiKey) metadata.set('x-api-key', controls.apiKey);
  try {
    return authenticate(deps, metadata);
  } catch {
    throw new EdgeError(401, 'authentication', controls.apiKey ? 'unknown API key' : 'missing API key (Authorization: Bearer <key> or x-api-key)');
  }
}

const mayUse = (o: KeyOwner, route: string) => !o.tenant.routes || o.tenant.routes.includes(route);

/** 404 for a model (route alias) that does not exist, 403 for one this key may not use. */
function checkModel(deps: EdgeDeps, o: KeyOwner, route: string): void {
  if (!Object.prototype.hasOwnProperty.call(deps.gateway.routes, route)) throw new EdgeError(404, 'not_found', `model "${route}" does not exist (models are route aliases: GET /v1/models)`, { param: 'model', code: 'model_not_found' });
  try {
    authorizeRoute(o, route);
  } catch (err) {
    throw new EdgeError(403, 'permission', (err as Error).message, { param: 'model' });
  }
}

/**
 * Runs one call through the router's Complete or StreamComplete handler in
 * process. Whole: one JSON answer with the x-switchyard-* headers. Streamed:
 * nothing is written until the first event (so a failure before it is an
 * ordinary error status and failover stays invisible); the x-switchyard-*
 * facts, known only at the end, go out as HTTP trailers.
 */
async function runCall(
  deps: EdgeDeps,
  r: EdgeRequest,
  controls: HeaderControls,
  init: RouterRequestInit,
  stream: false | StreamWriter,
  whole: (res: CompleteResponse) => unknown,
): Promise<void> {
  const o = owner(deps, controls);
  checkModel(deps, o, init.route ?? '');
  const headers: Record<string, string> = {};
  const onHeaders = (h: Record<string, string>) => Object.assign(headers, h);
  if (!stream) {
    const res = await inProcessCall(r.req, controls, r.signal, r.path, r.requestId, onHeaders, (call) => deps.calls.complete(completeRequest(init), call));
    sendJson(r.res, 200, whole(res), { ...headers, ...answerHeaders(res) });
    return;
  }
  const writer = stream;
  let firstInputTokens = 0;
  const write = (text: string): Promise<void> => {
    if (r.signal.aborted) return Promise.reject(new Error('client disconnected'));
    if (!r.res.headersSent) {
      r.res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', trailer: SWITCHYARD_TRAILERS.join(', ') });
      text = writer.first(firstInputTokens) + text;
    }
    if (r.res.write(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        r.res.off('drain', done);
        r.signal.removeEventListener('abort', gone);
        resolve();
      };
      const gone = () => {
        r.res.off('drain', done);
        reject(new Error('client disconnected'));
      };
      r.res.once('drain', done);
      r.signal.addEventListener('abort', gone, { once: true });
    });
  };
  let final: Final | undefined;
  await inProcessCall(r.req, controls, r.signal, r.path, r.requestId, onHeaders, (call) =>
    deps.calls.streamComplete(streamCompleteRequest(init), call, async (m) => {
      const ev = m.event;
      if (ev?.case === 'delta') {
        const d = ev.value;
        if (d.inputTokens) firstInputTokens = d.inputTokens;
        if (d.text) await write(writer.text(d.text));
        const t = d.toolCall;
        if (t) await write(writer.toolCall({ index: t.index ?? 0, id: t.id ?? '', name: t.name ?? '', argumentsFragment: t.argumentsFragment ?? '' }));
      } else if (ev?.case === 'final') {
        final = ev.value as Final;
        await write(writer.final(final));
      }
    }),
  );
  if (r.signal.aborted) return;
  if (final) r.res.addTrailers(answerHeaders(final));
  r.res.end();
}

const created = () => Math.floor(Date.now() / 1000);

/**
 * The HTTP edge: OpenAI- and Anthropic-compatible endpoints over the router's
 * own call steps (README "HTTP edge"), health and readiness.
 */
export function startEdge(deps: EdgeDeps, opts: EdgeOptions): Promise<EdgeServer & { stopping(): void }> {
  let stopping = false;
  const chatCompletions: EdgeRoute = async (r) => {
    deps.refuseWhenFull?.(); // an overloaded router spends nothing on a call it will refuse
    const controls = headerControls(r.req);
    owner(deps, controls); // 401 before the body is read
    const call = parseChatCompletion(await r.json(), controls);
    const model = call.init.route ?? '';
    const writer = call.stream ? openAiChunkWriter(`chatcmpl-${r.requestId}`, model, created(), call.includeUsage) : false;
    await runCall(deps, r, controls, call.init, writer, (res) => chatCompletionBody(res, model, created()));
  };
  const messages: EdgeRoute = async (r) => {
    deps.refuseWhenFull?.();
    const controls = headerControls(r.req);
    owner(deps, controls);
    const call = parseMessages(await r.json(), controls);
    r.fieldPaths = call.paths;
    const model = call.init.route ?? '';
    await runCall(deps, r, controls, call.init, call.stream ? anthropicEventWriter(r.requestId, model) : false, (res) => messageBody(res, model));
  };
  const countTokensRoute: EdgeRoute = async (r) => {
    const controls = headerControls(r.req);
    const o = owner(deps, controls);
    const { init, paths } = countTokensRequest(await r.json());
    r.fieldPaths = paths;
    checkModel(deps, o, init.route ?? '');
    const inputTokens = await inProcessCall(r.req, controls, r.signal, r.path, r.requestId, () => {}, async (call) => deps.calls.countInputTokens(completeRequest(init), call));
    sendJson(r.res, 200, { input_tokens: inputTokens });
  };
  // One path for both dialects: the Anthropic SDK always sends anthropic-version, and reads its own shape.
  const anthropicAsks = (r: EdgeRequest) => r.req.headers['anthropic-version'] !== undefined;
  const model = (r: EdgeRequest, id: string) =>
    anthropicAsks(r) ? { type: 'model', id, display_name: id, created_at: '1970-01-01T00:00:00Z' } : { id, object: 'model', created: 0, owned_by: 'switchyard' };
  const listModels: EdgeRoute = async (r) => {
    const o = owner(deps, headerControls(r.req));
    const ids = Object.keys(deps.gateway.routes).filter((id) => mayUse(o, id));
    const data = ids.map((id) => model(r, id));
    sendJson(r.res, 200, anthropicAsks(r) ? { data, has_more: false, first_id: ids[0] ?? null, last_id: ids.at(-1) ?? null } : { object: 'list', data });
  };
  const getModel = (id: string): EdgeRoute => async (r) => {
    const o = owner(deps, headerControls(r.req));
    if (!Object.prototype.hasOwnProperty.call(deps.gateway.routes, id) || !mayUse(o, id)) throw new EdgeError(404, 'not_found', `model "${id}" does not exist or this key may not use it`, { param: 'model', code: 'model_not_found' });
    sendJson(r.res, 200, model(r, id));
  };
  const healthz: EdgeRoute = async (r) => sendJson(r.res, 200, { status: 'ok' });
  const readyz: EdgeRoute = async (r) => {
    const down = stopping ? ['shutting down'] : await deps.peersReady();
    sendJson(r.res, down.length === 0 ? 200 : 503, { status: down.length === 0 ? 'ready' : 'not ready', config: 'loaded', unreachable: down });
  };
  const routes: Record<string, EdgeRoute> = {
    'POST /v1/chat/completions': chatCompletions,
    'POST /v1/messages': messages,
    'POST /v1/messages/count_tokens': countTokensRoute,
    'GET /v1/models': listModels,
    'GET /healthz': healthz,
    'GET /readyz': readyz,
  };
  return startEdgeServer({
    ...opts,
    route(method, path) {
      const exact = routes[`${method} ${path}`];
      if (exact) return exact;
      const m = method === 'GET' ? /^\/v1\/models\/(.+)$/.exec(path) : null;
      if (!m) return undefined;
      let id: string;
      try {
        id = decodeURIComponent(m[1]!);
      } catch {
        return async () => {
          throw badRequest('model', `the model id in the path is not valid percent-encoding: ${JSON.stringify(m[1]!.slice(0, 64))}`);
        };
      }
      return getModel(id);
    },
    fail: (r, err) => {
      // Anything not meant for the caller (a bug) is answered 500 "internal error"; its cause stays in the logs.
      if (toEdgeError(err).status === 500) deps.logger.error({ err, path: r.path, requestId: r.requestId }, 'unhandled error in HTTP edge');
      return r.path.startsWith('/v1/messages') ? sendAnthropicError(r, err) : sendOpenAiError(r, err);
    },
  }).then((server) => ({ ...server, stopping: () => void (stopping = true) }));
}

export { TRACE_ID_HEADER };
