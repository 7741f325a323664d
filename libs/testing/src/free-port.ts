import { createServer } from 'node:net';

/**
 * Asks the kernel for an unused TCP port on 127.0.0.1. There is a small window
 * between closing the probe socket and the caller binding the port, so callers
 * that spawn servers retry on a bind failure (see `startNats`/`startRedis`).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        return reject(new Error('freePort: could not read the bound address'));
      }
      const { port } = address;
      server.close(() => resolve(port));
    });
  });
}
