import { externalServer, startServerProcess, type ServerHandle } from './server-process';

export interface StartNatsOptions {
  /** Enable JetStream with a store dir that survives kill()/restart(). Default true. */
  jetstream?: boolean;
  /** Use NATS_URL when set instead of spawning (only for tests that never kill/restart). */
  reuseExternal?: boolean;
  /** Path or name of the binary. Default `nats-server` on PATH. */
  binary?: string;
}

/**
 * Starts a real nats-server on 127.0.0.1 and a free port (after the nats.js
 * `nst` launcher: spawn the real binary, wait until it speaks the protocol).
 * Readiness is the server's `INFO` line, which is sent only once JetStream is up.
 */
export function startNats(options: StartNatsOptions = {}): Promise<ServerHandle> {
  const { jetstream = true, reuseExternal = false, binary = 'nats-server' } = options;
  const external = process.env.NATS_URL;
  if (reuseExternal && external) return Promise.resolve(externalServer('nats-server', external));
  return startServerProcess({
    name: 'nats-server',
    command: binary,
    scheme: 'nats',
    needsDir: jetstream,
    args: (port, dir) => ['-a', '127.0.0.1', '-p', String(port), ...(jetstream ? ['-js', '-sd', dir!] : [])],
    probe: { expect: 'INFO ' },
  });
}
