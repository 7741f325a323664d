import { context, propagation, trace, type Span } from '@opentelemetry/api';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

/**
 * The `fetch` our adapters give the provider SDKs: the same contract (a
 * Response at headers, the body as a web stream) over node:http(s) and one
 * keep-alive Agent per protocol shared by every deployment, instead of the
 * global fetch (undici's). Measured by `npm run bench -- providers`, undici's
 * fetch spends ~4× the CPU of a node:http POST per call (its spec machinery:
 * Request/Headers objects, web-stream bodies, several promise hops), which
 * was most of what a provider call cost the router.
 *
 * Only what the SDKs send is handled here (a string or byte body, a
 * string/URL target); anything else goes to the global fetch. No redirects
 * are followed (provider APIs answer in place) and no compression is
 * requested; a compressed answer is still decoded. Aborting `init.signal`
 * destroys the request and its socket, as fetch does.
 *
 * Tracing: the request carries the active trace context (`traceparent`), so
 * an upstream that traces joins the call's trace, and the active span (the
 * router's attempt span) gets the request's HTTP facts (method, server, URL,
 * status). The router turns off the HTTP instrumentation's own client span
 * for these requests (startTelemetry `httpClientSpans: false`): it said the
 * same as the attempt span, at about 5 % of the router's CPU.
 */
export function createHttpFetch(agents: { http: HttpAgent; https: HttpsAgent } = sharedAgents()): typeof fetch {
  return (input, init = {}) => {
    const body = init.body;
    const plainBody = body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    if ((typeof input !== 'string' && !(input instanceof URL)) || !plainBody) return fetch(input, init);
    return new Promise<Response>((resolve, reject) => {
      const url = typeof input === 'string' ? new URL(input) : input;
      const https = url.protocol === 'https:';
      const headers = headerRecord(init.headers);
      if (body !== undefined && body !== null && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const signal = init.signal;
      if (signal?.aborted) return reject(abortError(signal));
      const method = init.method ?? 'GET';
      propagation.inject(context.active(), headers);
      const span = recordRequest(trace.getActiveSpan(), method, url);
      const options = { method, headers, agent: https ? agents.https : agents.http };
      const req = (https ? httpsRequest : httpRequest)(url, options, (res) => {
        span?.setAttribute('http.response.status_code', res.statusCode ?? 0);
        respond(res, resolve, reject);
      });
      req.on('error', (err) => reject(fetchFailed(err, signal)));
      // The abort wired by hand rather than node:http's `signal` option, whose stream
      // machinery (addAbortSignal, end-of-stream watchers) cost ~0.8 % of the router's CPU;
      // the same effect: the request and its socket destroyed with an AbortError. 'close'
      // comes once the answer has been read to its end (or the request failed).
      if (signal) {
        const onAbort = () => req.destroy(abortError(signal));
        signal.addEventListener('abort', onAbort, { once: true });
        req.once('close', () => signal.removeEventListener('abort', onAbort));
      }
      req.end(body ?? undefined);
    });
  };
}

let agents: { http: HttpAgent; https: HttpsAgent } | undefined;
let shared: typeof fetch | undefined;

/** The fetch every adapter uses unless its deployment brings its own. */
export function providerFetch(): typeof fetch {
  shared ??= createHttpFetch();
  return shared;
}

/**
 * An idle pooled socket is closed after this long, or a second before the
 * server's own `Keep-Alive: timeout=` hint: a socket a load balancer dropped
 * silently is not reused (undici's fetch used the same 4 s default). Without
 * it Node keeps idle sockets for ever and ignores the hint.
 */
const IDLE_SOCKET_MS = 4_000;

/** One keep-alive pool per protocol for the process: every deployment's SDK client reuses its sockets. */
export function sharedAgents(): { http: HttpAgent; https: HttpsAgent } {
  const options = { keepAlive: true, timeout: IDLE_SOCKET_MS };
  agents ??= { http: new HttpAgent(options), https: new HttpsAgent(options) };
  return agents;
}

/**
 * The HTTP semantic-convention facts of a provider request, on the span the
 * request belongs to (only when it is recorded); returns that span. The query
 * string is left out of `url.full` (Azure's holds the API version only, but a
 * custom server's might hold a key).
 */
function recordRequest(span: Span | undefined, method: string, url: URL): Span | undefined {
  if (!span?.isRecording()) return undefined;
  const https = url.protocol === 'https:';
  span.setAttributes({
    'http.request.method': method,
    'server.address': url.hostname,
    'server.port': url.port ? Number(url.port) : https ? 443 : 80,
    'url.full': `${url.origin}${url.pathname}`,
  });
  return span;
}

// Statuses whose Response must have a null body (the constructor throws otherwise).
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

function respond(res: IncomingMessage, resolve: (r: Response) => void, reject: (e: unknown) => void): void {
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 599) {
    res.destroy();
    reject(new TypeError('fetch failed', { cause: new Error(`invalid HTTP status ${status}`) }));
    return;
  }
  const init = { status, statusText: res.statusMessage };
  if (NULL_BODY.has(status)) {
    res.resume();
    resolve(withHeaders(new Response(null, init), res.rawHeaders));
    return;
  }
  const decoded = decode(res, headerOf(res, 'content-encoding') ?? null);
  // Server-sent events are read as they arrive; anything else is small and read whole, which costs
  // a fraction of a web stream (the SDK reads it whole anyway).
  if (headerOf(res, 'content-type')?.includes('text/event-stream')) {
    resolve(withHeaders(new Response(Readable.toWeb(decoded) as ReadableStream<Uint8Array>, init), res.rawHeaders));
    return;
  }
  const chunks: Buffer[] = [];
  decoded.on('data', (chunk: Buffer) => chunks.push(chunk));
  decoded.on('end', () => resolve(withHeaders(BufferedResponse.of(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), init), res.rawHeaders)));
  decoded.on('error', (err) => reject(fetchFailed(err)));
  // A response cut short ends without 'end' or 'error' on some Node versions: 'aborted' is the signal.
  res.on('aborted', () => reject(fetchFailed(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))));
}

/** A header of the answer as node:http parsed it (repeated values joined, as Headers.get joins them). */
function headerOf(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The answer's headers, appended to the Response's own (one pass, instead of a Headers object the constructor copies). */
function withHeaders<R extends Response>(response: R, raw: string[]): R {
  const headers = response.headers;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return response;
}

const utf8 = new TextDecoder();

/** What BufferedResponse keeps of Response's type: the DOM typings declare its body methods as properties, which a subclass cannot override. */
interface ResponseHead {
  readonly headers: Headers;
  readonly status: number;
  readonly statusText: string;
}
const ResponseBase = Response as unknown as new (body: null, init: ResponseInit) => ResponseHead;

/**
 * A whole answer already in memory, as a Response: status and headers as any
 * Response has them, while json(), text(), arrayBuffer() and bytes() read the
 * bytes in hand. undici's Response wraps a body in a web stream and reads it
 * back through it, which cost more CPU than the rest of the router's handling
 * of the provider's answer (stack bench profile: the Response constructor and
 * json() ~4 % of the router's CPU); the SDKs read a JSON answer with json().
 * Whatever wants the stream itself (`body`, blob(), formData()) gets a plain
 * Response over the same bytes, which owns the body from then on.
 */
class BufferedResponse extends ResponseBase {
  #bytes: Buffer;
  #used = false;
  #plain: Response | undefined;

  constructor(bytes: Buffer, init: ResponseInit) {
    super(null, init);
    this.#bytes = bytes;
  }

  #streamed(): Response {
    if (!this.#plain) {
      this.#plain = new Response(this.#bytes, { headers: this.headers });
      // Read already: its stream is as used as ours.
      if (this.#used) void this.#plain.arrayBuffer();
    }
    return this.#plain;
  }

  /** The bytes, once; a second read fails as fetch's does. */
  #take(): Buffer {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.#bytes;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#streamed().body;
  }

  get bodyUsed(): boolean {
    return this.#plain ? this.#plain.bodyUsed : this.#used;
  }

  async text(): Promise<string> {
    return this.#plain ? this.#plain.text() : utf8.decode(this.#take());
  }

  async json(): Promise<unknown> {
    return this.#plain ? this.#plain.json() : JSON.parse(utf8.decode(this.#take()));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#plain) return this.#plain.arrayBuffer();
    // A copy: the bytes may sit in Node's shared buffer pool.
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return this.#plain ? new Uint8Array(await this.#plain.arrayBuffer()) : new Uint8Array(this.#take());
  }

  async blob(): Promise<Blob> {
    return this.#streamed().blob();
  }

  async formData(): Promise<FormData> {
    return this.#streamed().formData();
  }

  clone(): Response {
    if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
    const init = { status: this.status, statusText: this.statusText, headers: this.headers };
    return this.#plain ? new Response(this.#plain.clone().body, init) : BufferedResponse.of(this.#bytes, init);
  }

  /** A BufferedResponse, typed as the Response it is at run time. */
  static of(bytes: Buffer, init: ResponseInit): Response {
    return new BufferedResponse(bytes, init) as unknown as Response;
  }
}

function decode(res: IncomingMessage, encoding: string | null): Readable {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return res.pipe(createGunzip());
    case 'deflate':
      return res.pipe(createInflate());
    case 'br':
      return res.pipe(createBrotliDecompress());
    default:
      return res;
  }
}

/** fetch's own shape for a network failure (TypeError with the socket error as its cause); an abort stays an AbortError. */
function fetchFailed(err: unknown, signal?: AbortSignal | null): unknown {
  if (signal?.aborted || (err as { name?: unknown } | null)?.name === 'AbortError') return err;
  return new TypeError('fetch failed', { cause: err });
}

/** What node:http destroys a request with when its signal aborts (name AbortError, code ABORT_ERR, the reason as cause). */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

function headerRecord(init: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!init) return out;
  if (init instanceof Headers) init.forEach((value, name) => (out[name] = value));
  else if (Array.isArray(init)) for (const [name, value] of init) out[name!.toLowerCase()] = value!;
  else for (const [name, value] of Object.entries(init)) if (value !== undefined) out[name.toLowerCase()] = String(value);
  return out;
}
