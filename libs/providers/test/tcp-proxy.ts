import { createServer, connect, type Socket } from 'node:net';

/**
 * A byte-for-byte TCP relay in front of the simulator so a test can watch
 * the client's connections from the outside: "the socket is released" means
 * the client closed its TCP connection, which only something on the wire can
 * see.
 */
export interface TcpProxy {
  readonly port: number;
  /**
   * Open client connections that have carried a request. Connections that
   * never sent a byte are not counted: undici may open a spare socket right
   * after destroying one, and that socket holds no request.
   */
  open(): number;
  /** Total client connections that carried a request. */
  accepted(): number;
  /** Resolves when no request-carrying connection is open; rejects after timeoutMs. */
  waitUntilIdle(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const clients = new Set<Socket>();
  const all = new Set<Socket>();
  let accepted = 0;
  let waiters: (() => void)[] = [];
  const server = createServer((client) => {
    all.add(client);
    client.once('close', () => all.delete(client));
    client.once('data', () => {
      accepted++;
      clients.add(client);
    });
    const upstream = connect(targetPort, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
      if (clients.delete(client) && clients.size === 0) {
        const w = waiters;
        waiters = [];
        w.forEach((f) => f());
      }
    };
    client.on('close', done);
    client.on('error', done);
    upstream.on('close', done);
    upstream.on('error', done);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    open: () => clients.size,
    accepted: () => accepted,
    waitUntilIdle(timeoutMs) {
      if (clients.size === 0) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`proxy: ${clients.size} connection(s) still open after ${timeoutMs} ms`)), timeoutMs);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    close() {
      for (const c of all) c.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
