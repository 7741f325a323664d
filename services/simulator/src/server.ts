import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countTextTokens, countToolCallTokens, loadTokenizer } from '@switchyard/tokens';
import { systemClock, type Clock } from '@switchyard/util';
import { handleAdmin } from './admin';
import { createAnthropicDialect } from './anthropic';
import { createContentCache } from './content';
import { isErrorReply, type ChatRequest, type Completion, type Dialect, type ErrorReply, type FaultContext } from './dialect';
import { retryAfterSeconds } from './durations';
import { activeOutage, createScenarioState, drawFault, shouldRetryHeader, type DeploymentRuntime, type ScenarioState } from './faults';
import { sampleLatency } from './latency';
import { createAzureDialect, createOpenAIDialect } from './openai';
import { createRateLimiter, type LimitSnapshot } from './rate-limits';
import { createRecorder, type DeploymentCounters, type RecordedRequest } from './recorder';
import { extraPromptTokens, jsonPieces, planToolCalls, structuredAnswer } from './tools';
import { BUILT_IN_SCENARIO, parseScenarioText, validateScenario, type FaultKind, type Scenario } from './scenario';

export interface SimulatorOptions {
  /** A scenario object (validated here) or YAML/JSON text; default BUILT_IN_SCENARIO. */
  scenario?: unknown;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Drives token-bucket refill, outage windows and timestamps; latency still uses real timers. */
  clock?: Clock;
}

export interface Simulator {
  port: number;
  /** http://host:port, the base for every provider (OpenAI SDK baseURL is `${url}/v1`). */
  url: string;
  /** Validates and installs a scenario (object or YAML/JSON text); throws ScenarioError and keeps the old one. */
  setScenario(scenario: unknown): Scenario;
  getScenario(): Scenario;
  counters(): Record<string, DeploymentCounters>;
  requests(deployment: string): RecordedRequest[];
  /** Clears counters, the request log and limiter buckets, and rewinds the fault dice. */
  reset(): void;
  /** Closes the listener and every open connection (hung requests included). */
  stop(): Promise<void>;
}

/** Bodies above this are refused with the provider's 413, as the real APIs do. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const AZURE_PATH = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/;
const STREAM_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
/** Statuses after which clients are told when to come back. */
const RETRY_AFTER_STATUSES = new Set([429, 503, 529]);
const NO_RETRY_AFTER = new Set<FaultKind>(['insufficient_quota', 'spend_limit']);

function toScenario(input: unknown): Scenario {
  return typeof input === 'string' ? parseScenarioText(input) : validateScenario(input);
}

/** Starts a simulator listening on `port` (0 = any free port). */
export async function createSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const clock = options.clock ?? systemClock;
  let state: ScenarioState = createScenarioState(toScenario(options.scenario ?? BUILT_IN_SCENARIO), clock.now());
  const limiter = createRateLimiter(clock);
  const recorder = createRecorder();
  const content = createContentCache();
  const dialects = { openai: createOpenAIDialect(), azure: createAzureDialect(), anthropic: createAnthropicDialect() };

  function setScenario(input: unknown): Scenario {
    const scenario = toScenario(input);
    state = createScenarioState(scenario, clock.now());
    limiter.reset(); // limits may have changed; buckets start full under the new scenario
    return scenario;
  }

  function reset(): void {
    recorder.reset();
    limiter.reset();
    state.reseed();
  }

  // ---- answering ---------------------------------------------------------------------------------------------

  function sendError(res: ServerResponse, dialect: Dialect, deployment: string, reply: ErrorReply, extra?: Record<string, string>): void {
    const headers = dialect.baseHeaders();
    if (extra) Object.assign(headers, extra);
    const body = dialect.stampError(reply.body, headers);
    headers['content-length'] = String(Buffer.byteLength(body));
    recorder.answered(deployment, reply.status);
    res.writeHead(reply.status, headers);
    res.end(body);
  }

  function faultHeaders(rt: DeploymentRuntime, kind: FaultKind, status: number, retryAfterMs: number, snapshot: LimitSnapshot | null, dialect: Dialect): Record<string, string> {
    const h: Record<string, string> = {};
    if (snapshot) dialect.addLimitHeaders(h, snapshot, clock.now());
    // Quota errors get no retry-after: the providers send none, and one would invite a retry that cannot succeed.
    if (RETRY_AFTER_STATUSES.has(status) && Number.isFinite(retryAfterMs) && !NO_RETRY_AFTER.has(kind)) {
      h['retry-after'] = String(retryAfterSeconds(retryAfterMs));
      h['retry-after-ms'] = String(Math.ceil(retryAfterMs));
    }
    const shouldRetry = shouldRetryHeader(rt.settings, kind);
    if (shouldRetry !== undefined) h['x-should-retry'] = shouldRetry;
    return h;
  }

  /** Answers with an injected fault (anything but content_filter, which is a successful answer). */
  function answerFault(res: ServerResponse, req: IncomingMessage, dialect: Dialect, rt: DeploymentRuntime, kind: FaultKind, ctx: FaultContext, snapshot: LimitSnapshot | null): void {
    recorder.fault(rt.name, kind);
    if (kind === 'reset') {
      recorder.answered(rt.name, 'reset');
      req.socket.destroy();
      return;
    }
    if (kind === 'hang') {
      // Never answer; the socket is released when the client gives up or stop() closes every connection.
      recorder.answered(rt.name, 'hang');
      return;
    }
    const reply = dialect.fault(kind, ctx);
    sendError(res, dialect, rt.name, reply, faultHeaders(rt, kind, reply.status, rt.settings.retryAfterMs, snapshot, dialect));
  }

  function handleChat(dialect: Dialect, req: IncomingMessage, res: ServerResponse, path: string, pathDeployment: string | undefined, query: string): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      let body: unknown;
      let parsed = true;
      if (size > MAX_BODY_BYTES) body = undefined;
      else {
        try {
          body = JSON.parse(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
        } catch {
          parsed = false;
        }
      }
      const bodyModel = body && typeof body === 'object' ? (body as { model?: unknown }).model : undefined;
      const deployment = pathDeployment ?? (typeof bodyModel === 'string' && bodyModel ? bodyModel : '_unknown');
      recorder.received(deployment, { at: new Date(clock.now()).toISOString(), method: req.method ?? 'POST', path, headers: req.headers, body });

      const early = dialect.preflight(req.headers, query);
      if (early) return sendError(res, dialect, deployment, early);
      const apiKey = dialect.apiKey(req.headers);
      if (apiKey === undefined) return sendError(res, dialect, deployment, dialect.missingKey());
      if (size > MAX_BODY_BYTES) {
        const ctx: FaultContext = { deployment, model: deployment, apiKey, promptTokens: 0, contextWindow: 0, retryAfterMs: 0, rpmLimit: null };
        return sendError(res, dialect, deployment, dialect.fault('too_large', ctx));
      }
      if (!parsed) return sendError(res, dialect, deployment, dialect.invalidJson());
      const request = dialect.parse(body, pathDeployment, query);
      if (isErrorReply(request)) return sendError(res, dialect, deployment, request);
      admitAndAnswer(dialect, req, res, request, apiKey);
    });
  }

  function admitAndAnswer(dialect: Dialect, req: IncomingMessage, res: ServerResponse, request: ChatRequest, apiKey: string): void {
    const name = request.deployment;
    const rt = state.deployment(name);
    const ctx: FaultContext = {
      deployment: name,
      model: rt?.model ?? name,
      apiKey,
      promptTokens: 0,
      contextWindow: rt?.settings.contextWindow ?? 0,
      retryAfterMs: rt?.settings.retryAfterMs ?? 0,
      rpmLimit: rt?.settings.limits.rpm ?? null,
      apiVersion: request.apiVersion,
    };
    if (!rt) {
      // strictModels: the scenario lists every deployment that exists.
      recorder.fault(name, 'not_found');
      return sendError(res, dialect, name, dialect.fault('not_found', ctx));
    }
    // Drawn first and always, so the n-th request's fate does not depend on what happened before it.
    const injected = drawFault(rt);
    const settings = rt.settings;
    const apiKeys = state.scenario.apiKeys;
    if (apiKeys && !apiKeys.includes(apiKey)) return answerFault(res, req, dialect, rt, 'unauthorized', ctx, null);

    const info = content.promptInfo(request.messages, dialect.tokenProvider);
    // Tools, tool calls in the conversation and images are billed on top of the framed text.
    const prompt = { hash: info.hash, tokens: info.tokens + extraPromptTokens(request.features, dialect.tokenProvider) };
    ctx.promptTokens = prompt.tokens;
    const now = clock.now();
    const outage = activeOutage(rt, now);
    if (outage) return answerFault(res, req, dialect, rt, outage, ctx, limiter.peek(name, apiKey, settings.limits));
    if (prompt.tokens > settings.contextWindow) {
      return answerFault(res, req, dialect, rt, 'context_length', ctx, limiter.peek(name, apiKey, settings.limits));
    }

    const admission = limiter.admit(name, apiKey, settings.limits, prompt.tokens + (request.maxTokens ?? settings.defaultMaxTokens));
    if (!admission.ok) {
      const reply = dialect.rateLimited(admission.rejection, ctx);
      recorder.fault(name, 'limit_exceeded');
      return sendError(res, dialect, name, reply, faultHeaders(rt, 'rate_limit', 429, admission.rejection.retryAfterMs, admission.snapshot, dialect));
    }
    if (injected && injected !== 'content_filter') return answerFault(res, req, dialect, rt, injected, ctx, admission.snapshot);

    let reply = content.reply(prompt.hash, settings.reply.minTokens, settings.reply.maxTokens, request.maxTokens, request.stop);
    let finish: Completion['finish'] = reply.finish;
    let toolCalls = planToolCalls(request.features, prompt.hash).map((c) => ({ id: dialect.newToolCallId(), ...c }));
    if (toolCalls.length > 0) {
      reply = { pieces: [], text: '', tokens: countToolCallTokens(toolCalls), finish: 'stop', stopSequence: null };
      finish = 'tool_calls';
    } else if (request.features.responseFormat) {
      // Structured output: JSON valid against the requested schema, streamed in small pieces like any text.
      const text = structuredAnswer(request.features.responseFormat, request.features.lastUserText, prompt.hash);
      reply = { pieces: jsonPieces(text), text, tokens: countTextTokens(text), finish: 'stop', stopSequence: null };
      finish = 'stop';
    }
    if (injected === 'content_filter') {
      // The filter stops generation part-way: half the reply is delivered, flagged as filtered.
      recorder.fault(name, 'content_filter');
      toolCalls = [];
      const pieces = reply.pieces.slice(0, Math.floor(reply.pieces.length / 2));
      const text = pieces.join('');
      reply = { pieces, text, tokens: countTextTokens(text), finish: 'stop', stopSequence: null };
      finish = 'content_filter';
    }
    const completion: Completion = {
      id: dialect.newId(),
      created: Math.floor(now / 1000),
      model: rt.model,
      text: reply.text,
      pieces: reply.pieces,
      finish,
      stopSequence: reply.stopSequence,
      promptTokens: prompt.tokens,
      completionTokens: reply.tokens,
      includeUsage: request.includeUsage,
      toolCalls,
    };
    const headers = dialect.baseHeaders();
    dialect.addLimitHeaders(headers, admission.snapshot, now);
    if (request.stream) return streamCompletion(dialect, req, res, rt, completion, headers);
    respondCompletion(dialect, res, rt, completion, headers);
  }

  function respondCompletion(dialect: Dialect, res: ServerResponse, rt: DeploymentRuntime, c: Completion, headers: Record<string, string>): void {
    const send = () => {
      const body = dialect.completion(c);
      headers['content-length'] = String(Buffer.byteLength(body));
      recorder.answered(rt.name, 200);
      recorder.billed(rt.name, c.promptTokens, c.completionTokens);
      res.writeHead(200, headers);
      res.end(body);
    };
    if (rt.zeroLatency) return send();
    let delay = sampleLatency(rt.settings.latency.firstToken, rt.latencyRandom);
    for (let i = 1; i < c.pieces.length; i++) delay += sampleLatency(rt.settings.latency.perToken, rt.latencyRandom);
    const timer = setTimeout(send, delay);
    res.once('close', () => clearTimeout(timer));
  }

  function streamCompletion(dialect: Dialect, req: IncomingMessage, res: ServerResponse, rt: DeploymentRuntime, c: Completion, headers: Record<string, string>): void {
    const settings = rt.settings;
    // Mid-stream faults: the smaller N fires; on a tie the error event (the more informative failure) wins.
    let cutAt: number | null = null;
    let errorAt: number | null = null;
    if ((settings.cutAfterChunks !== null || settings.streamErrorAfterChunks !== null) && rt.streamRandom() < settings.streamFaultRate) {
      const cut = settings.cutAfterChunks ?? Infinity;
      const error = settings.streamErrorAfterChunks ?? Infinity;
      // A reply shorter than N still fails (after its last piece), so a configured stream fault always fires.
      // Capped to the chunk count below, once the tool-call frames are known.
      if (error <= cut) errorAt = error;
      else cutAt = cut;
    }
    // Every chunk after the opening frames: text deltas, then tool-call frames. Stream faults count these chunks.
    const frames = c.pieces.map((piece, i) => dialect.stream.delta(c, piece, i)).concat(dialect.stream.toolFrames(c));
    if (errorAt !== null) errorAt = Math.min(errorAt, frames.length);
    if (cutAt !== null) cutAt = Math.min(cutAt, frames.length);
    recorder.answered(rt.name, 200);
    recorder.billed(rt.name, c.promptTokens, c.completionTokens);
    res.writeHead(200, Object.assign(headers, STREAM_HEADERS));
    res.write(dialect.stream.open(c));

    const pieceCount = cutAt ?? errorAt ?? frames.length;
    const finish = () => {
      if (cutAt !== null) {
        recorder.fault(rt.name, 'stream_cut');
        // Destroy only once what was written is flushed, so the client sees exactly N chunks then a dead socket.
        res.write('', () => req.socket.destroy());
        return;
      }
      if (errorAt !== null) {
        recorder.fault(rt.name, 'stream_error');
        res.end(dialect.stream.error());
        return;
      }
      res.end(dialect.stream.close(c));
    };

    if (rt.zeroLatency) {
      let out = '';
      for (let i = 0; i < pieceCount; i++) out += frames[i]!;
      if (out) res.write(out);
      return finish();
    }
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    res.once('close', () => {
      closed = true;
      if (timer) clearTimeout(timer);
    });
    const next = () => {
      if (closed) return;
      if (i >= pieceCount) return finish();
      res.write(frames[i]!);
      i++;
      timer = setTimeout(next, i >= pieceCount ? 0 : sampleLatency(settings.latency.perToken, rt.latencyRandom));
    };
    timer = setTimeout(next, sampleLatency(settings.latency.firstToken, rt.latencyRandom));
  }

  function listModels(req: IncomingMessage, res: ServerResponse): void {
    const names = Object.keys(state.scenario.deployments);
    const created = Math.floor(clock.now() / 1000);
    const anthropic = req.headers['anthropic-version'] !== undefined;
    const body = anthropic
      ? {
          data: names.map((id) => ({ type: 'model', id, display_name: id, created_at: new Date(created * 1000).toISOString() })),
          has_more: false,
          first_id: names[0] ?? null,
          last_id: names[names.length - 1] ?? null,
        }
      : { object: 'list', data: names.map((id) => ({ id, object: 'model', created, owned_by: 'system' })) };
    const dialect = anthropic ? dialects.anthropic : dialects.openai;
    const text = JSON.stringify(body);
    const headers = dialect.baseHeaders();
    headers['content-length'] = String(Buffer.byteLength(text));
    res.writeHead(200, headers);
    res.end(text);
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    if (path.startsWith('/_admin/')) {
      return handleAdmin(
        { recorder, getScenario: () => state.scenario, setScenarioText: (text) => setScenario(text), reset },
        req,
        res,
        path,
        query,
      );
    }
    if (req.method === 'POST') {
      if (path === '/v1/chat/completions') return handleChat(dialects.openai, req, res, path, undefined, query);
      if (path === '/v1/messages') return handleChat(dialects.anthropic, req, res, path, undefined, query);
      const azure = AZURE_PATH.exec(path);
      if (azure) return handleChat(dialects.azure, req, res, path, decodeURIComponent(azure[1]!), query);
    } else if (req.method === 'GET' && path === '/v1/models') {
      return listModels(req, res);
    }
    req.resume();
    const body = JSON.stringify({ error: { message: `Invalid URL (${req.method} ${path})`, type: 'invalid_request_error', param: null, code: null } });
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  }

  loadTokenizer(); // every request counts tokens: build the tables before the first one
  const server = createServer({ keepAliveTimeout: 65_000 }, onRequest);
  // A hung request must stay hung however long a test waits; only the client or stop() ends it.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    port: address.port,
    url: `http://${host}:${address.port}`,
    setScenario,
    getScenario: () => state.scenario,
    counters: () => recorder.counters(),
    requests: (deployment) => recorder.requests(deployment),
    reset,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
