import { request } from 'node:http';
import type { SwitchyardConfig } from '@switchyard/config';
import { createInFlightGate, refuseWhenFull } from '../handlers/load-shed';
import { startEdge } from './edge';

/**
 * An overloaded router refuses an HTTP call from its headers: 429 with a
 * retry-after in the caller's dialect, before its body arrives (so before
 * any of it is read or parsed) and without calling the router's handlers.
 */
describe('HTTP edge under overload', () => {
  const gate = createInFlightGate(1);
  let edge: Awaited<ReturnType<typeof startEdge>>;
  let handlerCalls = 0;
  beforeAll(async () => {
    const never = () => {
      handlerCalls += 1;
      return Promise.reject(new Error('the handler must not run'));
    };
    edge = await startEdge(
      {
        gateway: { routes: {} } as unknown as SwitchyardConfig,
        keys: new Map(),
        calls: {
          complete: never,
          streamComplete: never,
          countInputTokens: () => {
            handlerCalls += 1;
            throw new Error('the handler must not run');
          },
        },
        refuseWhenFull: () => refuseWhenFull(gate),
        peersReady: async () => [],
        logger: { error: () => undefined },
      },
      { host: '127.0.0.1', port: 0, maxBodyBytes: 1 << 20, headersTimeoutMs: 5_000, requestTimeoutMs: 5_000 },
    );
    gate.tryEnter(); // the one place is taken
  });
  afterAll(() => edge.close(0));

  /** Sends headers announcing a body it never sends; resolves with the answer. */
  function headersOnly(path: string): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: edge.port, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '4096', authorization: 'Bearer k' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString()) });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.flushHeaders();
    });
  }

  it('OpenAI dialect: 429 rate_limit_error, code router_overloaded, retry-after, before the body is sent', async () => {
    const res = await headersOnly('/v1/chat/completions');
    expect(res.status).toBe(429);
    expect(res.headers).toMatchObject({ 'retry-after': '1', 'retry-after-ms': '100' });
    expect(res.body).toMatchObject({ error: { type: 'rate_limit_error', code: 'router_overloaded' } });
    expect(handlerCalls).toBe(0);
  });

  it('Anthropic dialect: 429 rate_limit_error with retry-after, before the body is sent', async () => {
    const res = await headersOnly('/v1/messages');
    expect(res.status).toBe(429);
    expect(res.headers).toMatchObject({ 'retry-after': '1', 'retry-after-ms': '100' });
    expect(res.body).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(handlerCalls).toBe(0);
  });
});
