import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { trackChild } from './child-registry';

export interface SpawnProcessOptions {
  /** Path to the entry point: TypeScript (e.g. services/router/src/main.ts, run through tsx) or built JavaScript (dist/router/main.js, run by node alone). */
  entry: string;
  args?: string[];
  /** Options for node itself, before the entry (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  nodeArgs?: string[];
  /**
   * Extra environment, merged over the parent's. `undefined` values remove a variable.
   * METRICS_PORT defaults to 0 (any free port): parallel tests must not race for a service's default port.
   */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** How long to wait for the readiness line. Default 20 s (tsx compiles on first start). */
  readyTimeoutMs?: number;
  /** Called with every stdout/stderr line as it arrives (e.g. `npm run stack` prints them prefixed with the service). */
  onLine?: (line: string) => void;
}

export interface SpawnedProcess {
  /** The port from the readiness line. */
  readonly port: number;
  /** The /metrics port from the readiness line, when the process serves one. */
  readonly metricsPort?: number;
  readonly pid: number;
  /** Captured stdout and stderr lines (live array: keeps growing). */
  readonly lines: string[];
  /** Resolves with the exit code (null when ended by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM), SIGKILLs after `timeoutMs` (default 10 s), resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL, for crash tests. */
  kill(): Promise<void>;
  /** Waits for a captured line (past or future) matching `predicate`. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

/** Parses the readiness protocol line: JSON with `"event":"listening"` and a numeric `port`. */
export function parseReadyLine(line: string): number | undefined {
  if (!line.includes('"listening"')) return undefined;
  try {
    const parsed = JSON.parse(line) as { event?: unknown; port?: unknown };
    return parsed.event === 'listening' && typeof parsed.port === 'number' ? parsed.port : undefined;
  } catch {
    return undefined;
  }
}

function readyMetricsPort(line: string): { metricsPort?: number } {
  const parsed = JSON.parse(line) as { metrics_port?: unknown };
  return typeof parsed.metrics_port === 'number' ? { metricsPort: parsed.metrics_port } : {};
}

/** tsx's ESM+CJS loader as an absolute URL, so the child does not depend on its cwd. */
function tsxLoader(): string {
  return pathToFileURL(require.resolve('tsx')).href;
}

/**
 * Runs a process entry point the way production runs it (its own
 * process, real sockets) and waits for the readiness protocol line. Rejects with
 * everything the process printed if it exits or stays silent past the timeout.
 */
export function spawnProcess(options: SpawnProcessOptions): Promise<SpawnedProcess> {
  const { entry, args = [], nodeArgs = [], env = {}, cwd, readyTimeoutMs = 20_000, onLine: forward } = options;
  if (!entry) throw new Error('spawnProcess: entry is required (path to a .ts or .js main)');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, METRICS_PORT: '0' };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const loader = entry.endsWith('.ts') ? ['--import', tsxLoader()] : [];
  const child = spawn(process.execPath, [...nodeArgs, ...loader, entry, ...args], {
    cwd,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);

  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const onLine = (line: string) => {
    lines.push(line);
    forward?.(line);
    for (const listener of listeners) listener(line);
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);

  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
  });

  const waitForLine = (predicate: (line: string) => boolean, timeoutMs = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const found = lines.find(predicate);
      if (found !== undefined) return resolve(found);
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no matching line from ${entry} within ${timeoutMs} ms; output:\n${lines.join('\n')}`));
      }, timeoutMs);
      const listener = (line: string) => {
        if (!predicate(line)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(line);
      };
      listeners.add(listener);
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  return new Promise<SpawnedProcess>((resolve, reject) => {
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      listeners.delete(readyListener);
      child.kill('SIGKILL');
      reject(new Error(`${entry} ${reason}; output:\n${lines.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`did not print a "listening" line within ${readyTimeoutMs} ms`), readyTimeoutMs);
    child.once('error', (err) => fail(`could not be spawned (${err.message})`));
    // Lines are flushed before 'exit' fires only if we wait for stream close.
    child.once('close', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before it was ready`));
    const readyListener = (line: string) => {
      const port = parseReadyLine(line);
      if (port === undefined || settled) return;
      settled = true;
      clearTimeout(timer);
      listeners.delete(readyListener);
      resolve({
        port,
        ...readyMetricsPort(line),
        pid: child.pid!,
        lines,
        exited,
        stop,
        kill: async () => {
          await stop('SIGKILL', 0);
        },
        waitForLine,
      });
    };
    listeners.add(readyListener);
  });
}
