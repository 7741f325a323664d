import { externalServer, startServerProcess, type ServerHandle } from './server-process';

export interface StartRedisOptions {
  /** Use REDIS_URL when set instead of spawning (only for tests that never kill/restart). */
  reuseExternal?: boolean;
  /** Path or name of the binary. Default `redis-server` on PATH. */
  binary?: string;
}

/**
 * Starts a real redis-server on 127.0.0.1 and a free port with persistence off
 * (state is deliberately lost on kill: that is what a Redis crash looks like to
 * the services). Ready once it answers PING.
 */
export function startRedis(options: StartRedisOptions = {}): Promise<ServerHandle> {
  const { reuseExternal = false, binary = 'redis-server' } = options;
  const external = process.env.REDIS_URL;
  if (reuseExternal && external) return Promise.resolve(externalServer('redis-server', external));
  return startServerProcess({
    name: 'redis-server',
    command: binary,
    scheme: 'redis',
    needsDir: true,
    args: (port, dir) => [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir!,
    ],
    probe: { send: 'PING\r\n', expect: '+PONG' },
  });
}
