import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port';
import { releaseTempDir, trackChild, trackTempDir } from './child-registry';

/** A real server binary (or an external server) started for a test. */
export interface ServerHandle {
  /** Connection URL, e.g. `nats://127.0.0.1:41234` or `redis://127.0.0.1:41235`. */
  readonly url: string;
  readonly port: number;
  /** True when the handle points at NATS_URL / REDIS_URL instead of a spawned child. */
  readonly external: boolean;
  /** Graceful stop (SIGTERM, SIGKILL after 5 s) and temp dir removal. Idempotent. */
  stop(): Promise<void>;
  /** Hard crash (SIGKILL); the data dir is kept so `restart()` can bring the state back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data dir (stopping it first if running). */
  restart(): Promise<void>;
  /** Captured stdout+stderr of the current child, for failure messages. */
  output(): string;
}

export interface ServerSpec {
  /** Human name used in errors ("nats-server"). */
  name: string;
  command: string;
  scheme: string;
  /** Whether the server needs a data dir. */
  needsDir: boolean;
  args(port: number, dir: string | undefined): string[];
  /**
   * Bytes to send after connecting and the prefix the reply must start with:
   * a TCP accept alone can precede real readiness.
   */
  probe: { send?: string; expect: string };
  readyTimeoutMs?: number;
}

const STOP_GRACE_MS = 5_000;

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** One connection attempt: resolves true once the server answers with the expected prefix. */
function probeOnce(port: number, probe: ServerSpec['probe']): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => {
      if (probe.send) socket.write(probe.send);
    });
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      if (received.length >= probe.expect.length) done(received.startsWith(probe.expect));
    });
  });
}

class BindError extends Error {}

async function launch(spec: ServerSpec, port: number, dir: string | undefined) {
  const child = spawn(spec.command, spec.args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 64_000) output = output.slice(-32_000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const deadline = Date.now() + (spec.readyTimeoutMs ?? 10_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const message = `${spec.name} exited (code ${child.exitCode}, signal ${child.signalCode}) before accepting connections on port ${port}:\n${output}`;
      // A port taken between freePort() and bind is retried by the caller.
      throw /address already in use|bind/i.test(output) ? new BindError(message) : new Error(message);
    }
    const failed = await Promise.race([spawnError, Promise.resolve(undefined)]);
    if (failed) throw new Error(`cannot spawn ${spec.name} (${spec.command}): ${failed.message}`);
    if (await probeOnce(port, spec.probe)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${spec.name} did not become ready on port ${port} within ${spec.readyTimeoutMs ?? 10_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, output: () => output };
}

/**
 * Spawns `spec` on a free port in a fresh temp dir and returns a handle that can
 * stop, crash and restart it on the same port with the same data dir.
 */
export async function startServerProcess(spec: ServerSpec): Promise<ServerHandle> {
  const dir = spec.needsDir ? mkdtempSync(join(tmpdir(), `sy-${spec.name}-`)) : undefined;
  if (dir) trackTempDir(dir);

  let port = 0;
  let current: Awaited<ReturnType<typeof launch>> | undefined;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      current = await launch(spec, port, dir);
      break;
    } catch (err) {
      if (!(err instanceof BindError) || attempt >= 5) {
        if (dir) releaseTempDir(dir);
        throw err;
      }
    }
  }

  let stopped = false;
  const terminate = async (signal: NodeJS.Signals) => {
    const running = current;
    if (!running) return;
    current = undefined;
    const exited = waitForExit(running.child);
    running.child.kill(signal);
    const timer = setTimeout(() => running.child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    lastOutput = running.output();
  };
  let lastOutput = '';

  return {
    url: `${spec.scheme}://127.0.0.1:${port}`,
    port,
    external: false,
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate('SIGTERM');
      if (dir) releaseTempDir(dir);
    },
    async kill() {
      if (stopped) throw new Error(`${spec.name} on port ${port} was stopped; kill() needs a running server`);
      await terminate('SIGKILL');
    },
    async restart() {
      if (stopped) throw new Error(`${spec.name} on port ${port} was stopped; restart() needs kill() or a running server`);
      await terminate('SIGTERM');
      current = await launch(spec, port, dir);
    },
    output() {
      return current ? current.output() : lastOutput;
    },
  };
}

/** A handle to a server the test did not start (NATS_URL / REDIS_URL): it cannot be crashed. */
export function externalServer(name: string, url: string): ServerHandle {
  let port: number;
  try {
    port = Number(new URL(url).port) || 0;
  } catch {
    throw new Error(`external ${name} URL is not a valid URL: ${JSON.stringify(url)}`);
  }
  const refuse = (what: string) => async () => {
    throw new Error(
      `${what}() is not possible on the external ${name} at ${url}; call without { reuseExternal: true } so the test spawns its own server`,
    );
  };
  return {
    url,
    port,
    external: true,
    stop: async () => {},
    kill: refuse('kill'),
    restart: refuse('restart'),
    output: () => '',
  };
}
