import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { getEventListeners } from 'node:events';
import { gzipSync } from 'node:zlib';
import { freePort } from '@switchyard/testing';
import { createProviderAdapter } from '../src';
import { createHttpFetch } from '../src/http-fetch';

/** The fetch the adapters hand the SDKs (node:http over shared keep-alive agents), against a local server. */
describe('createHttpFetch', () => {
  let server: Server;
  let base: string;
  let handler: (req: IncomingMessage, body: string, res: ServerResponse) => void;
  const httpFetch = createHttpFetch();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => handler(req, body, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends method, headers and body; answers status, headers and body', async () => {
    handler = (req, body, res) => res.writeHead(201, { 'content-type': 'application/json', 'x-request-id': 'req-1' }).end(JSON.stringify({ method: req.method, auth: req.headers.authorization, body }));
    const res = await httpFetch(`${base}/v1/chat/completions`, { method: 'POST', headers: new Headers({ Authorization: 'Bearer k' }), body: '{"a":1}' });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toBe('req-1');
    expect(await res.json()).toEqual({ method: 'POST', auth: 'Bearer k', body: '{"a":1}' });
  });

  it('reads a whole answer once, whichever way, as fetch does', async () => {
    handler = (_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('\uFEFF{"a":"é"}');
    const res = await httpFetch(`${base}/x`);
    expect(res instanceof Response).toBe(true);
    expect(res.bodyUsed).toBe(false);
    // A leading byte-order mark is dropped, as fetch's UTF-8 decode drops it.
    expect(await res.json()).toEqual({ a: 'é' });
    expect(res.bodyUsed).toBe(true);
    await expect(res.text()).rejects.toThrow(TypeError);
    await expect(res.arrayBuffer()).rejects.toThrow(TypeError);
    expect(() => res.clone()).toThrow(TypeError);
  });

  it('gives a whole answer as a stream, a copy of its bytes, or a clone that reads on its own', async () => {
    handler = (_req, _body, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
    const streamed = await httpFetch(`${base}/x`);
    const chunks: string[] = [];
    for await (const c of streamed.body as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c).toString());
    expect(chunks.join('')).toBe('hello');
    expect(streamed.bodyUsed).toBe(true);
    // (undici's own TypeError: another realm than this test's under jest)
    await expect(streamed.text()).rejects.toMatchObject({ name: 'TypeError' });

    const res = await httpFetch(`${base}/x`);
    const copy = res.clone();
    const bytes = new Uint8Array(await res.arrayBuffer());
    bytes[0] = 0;
    expect(await copy.text()).toBe('hello');
    expect(copy.status).toBe(200);
    expect(copy.headers.get('content-type')).toBe('text/plain');
    expect(await (await httpFetch(`${base}/x`)).blob()).toMatchObject({ size: 5, type: 'text/plain' });
  });

  it('decodes a gzip answer', async () => {
    handler = (_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync('{"ok":true}'));
    expect(await (await httpFetch(`${base}/x`)).json()).toEqual({ ok: true });
  });

  it('answers a 204 with a null body', async () => {
    handler = (_req, _body, res) => res.writeHead(204).end();
    const res = await httpFetch(`${base}/x`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
  });

  it('streams server-sent events as they arrive', async () => {
    let finish: () => void = () => {};
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      finish = () => res.end('data: two\n\n');
    };
    const res = await httpFetch(`${base}/x`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toBe('data: one\n\n');
    finish();
    const rest: string[] = [];
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(Buffer.from(r.value).toString());
    expect(rest.join('')).toBe('data: two\n\n');
  });

  it('rejects with an AbortError when its signal aborts while waiting for the answer', async () => {
    handler = () => {}; // never answers
    const controller = new AbortController();
    const pending = httpFetch(`${base}/x`, { method: 'POST', body: '{}', signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects at once, sending nothing, when its signal has already aborted', async () => {
    let requests = 0;
    handler = (req, _body, res) => {
      if (req.url === '/pre-aborted') requests += 1;
      res.end('{}');
    };
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(httpFetch(`${base}/pre-aborted`, { method: 'POST', body: '{}', signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError', cause: { message: 'gone' } });
    await httpFetch(`${base}/pre-aborted`);
    expect(requests).toBe(1);
  });

  it('ends a streamed answer with an error when its signal aborts mid-stream, and lets go of the signal once an answer is read', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
    };
    const controller = new AbortController();
    const streamed = await httpFetch(`${base}/x`, { signal: controller.signal });
    const reader = streamed.body!.getReader();
    await reader.read();
    controller.abort();
    // The socket is destroyed under the stream: it errors as a reset connection.
    await expect(reader.read()).rejects.toMatchObject({ code: 'ECONNRESET' });

    handler = (_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    const kept = new AbortController();
    const res = await httpFetch(`${base}/x`, { signal: kept.signal });
    expect(await res.json()).toEqual({ ok: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(getEventListeners(kept.signal, 'abort')).toHaveLength(0);
  });

  it('rejects like fetch (TypeError with the socket error as cause) when the connection is refused', async () => {
    const port = await freePort();
    await expect(httpFetch(`http://127.0.0.1:${port}/x`)).rejects.toMatchObject({ name: 'TypeError', cause: { code: 'ECONNREFUSED' } });
  });

  it('is what an adapter calls by default, not the global fetch', async () => {
    handler = (_req, _body, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }),
      );
    const globalFetch = jest.spyOn(globalThis, 'fetch');
    try {
      const adapter = createProviderAdapter({ name: 'd', provider: 'openai', baseUrl: `${base}/v1`, model: 'm', apiKey: 'k' });
      expect((await adapter.complete({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 4 })).content).toBe('ok');
      expect(globalFetch).not.toHaveBeenCalled();
    } finally {
      globalFetch.mockRestore();
    }
  });
});
