import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Every child process and temp dir the test helpers create is registered here so
 * that a test run which crashes, times out or forgets `stop()` never leaves a
 * nats-server / redis-server / service running or a temp dir behind. The exit
 * hook is installed lazily (no side effects at import).
 */
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;
let signalsHandledByCaller = false;

/**
 * For a long-running owner of these processes (`npm run stack`) that stops them
 * gracefully itself on SIGINT/SIGTERM: the registry then leaves signals alone
 * and only reaps, at exit, whatever is still running.
 */
export function leaveSignalsToCaller(): void {
  signalsHandledByCaller = true;
}

function cleanupSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
  tempDirs.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanupSync);
  // A terminated test runner emits no 'exit': clean up, then let the signal do its default.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      if (signalsHandledByCaller) return;
      cleanupSync();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

export function trackChild(child: ChildProcess): void {
  hook();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function trackTempDir(dir: string): void {
  hook();
  tempDirs.add(dir);
}

export function releaseTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}
