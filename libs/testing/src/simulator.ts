import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { releaseTempDir, trackTempDir } from './child-registry';
import { spawnProcess, type SpawnedProcess } from './spawn-process';

/** Per-deployment counters as served by `GET /_admin/counters`. */
export interface SimulatorDeploymentCounters {
  received: number;
  byStatus: Record<string, number>;
  /** Tokens of every completion answered 200: what the provider bills. */
  usage: { inputTokens: number; outputTokens: number };
  [extra: string]: unknown;
}

/** One request the simulator received, as served by `GET /_admin/requests`. */
export interface SimulatorRequestRecord {
  body?: unknown;
  headers?: Record<string, string | string[]>;
  [extra: string]: unknown;
}

export interface SpawnSimulatorOptions {
  /** Scenario object (written to a temp JSON file, which is valid YAML) or a path to a YAML file. */
  scenario?: object | string;
  /** Port to listen on; default 0 (a free one). */
  port?: number;
  env?: Record<string, string | undefined>;
}

export interface SimulatorHandle {
  /** `http://127.0.0.1:<port>`: use as the provider base URL. */
  readonly url: string;
  readonly port: number;
  readonly process: SpawnedProcess;
  /** Replaces the scenario (PUT /_admin/scenario). */
  setScenario(scenario: object): Promise<void>;
  counters(): Promise<Record<string, SimulatorDeploymentCounters>>;
  requests(deployment: string): Promise<SimulatorRequestRecord[]>;
  /** Clears counters, request log and limiter buckets (POST /_admin/reset). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Root of the monorepo, from libs/testing/src. */
const REPO_ROOT = resolve(__dirname, '../../..');
export const SIMULATOR_ENTRY = join(REPO_ROOT, 'services/simulator/src/main.ts');

async function admin(base: string, method: string, path: string, body?: string): Promise<unknown> {
  const response = await fetch(`${base}/_admin/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`simulator ${method} /_admin/${path} failed: ${response.status} ${text}`);
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Starts the provider simulator as its own process (as in production tests of
 * the real SDKs) and wraps its admin API.
 */
export async function spawnSimulator(options: SpawnSimulatorOptions = {}): Promise<SimulatorHandle> {
  const { scenario, port = 0, env } = options;
  const args = ['--port', String(port)];
  let dir: string | undefined;
  if (typeof scenario === 'string') {
    args.push('--scenario', scenario);
  } else if (scenario !== undefined) {
    dir = mkdtempSync(join(tmpdir(), 'sy-sim-'));
    trackTempDir(dir);
    const file = join(dir, 'scenario.json');
    writeFileSync(file, JSON.stringify(scenario, null, 2));
    args.push('--scenario', file);
  }
  let child: SpawnedProcess;
  try {
    child = await spawnProcess({ entry: SIMULATOR_ENTRY, args, env, cwd: REPO_ROOT });
  } catch (err) {
    if (dir) releaseTempDir(dir);
    throw err;
  }
  const url = `http://127.0.0.1:${child.port}`;
  return {
    url,
    port: child.port,
    process: child,
    async setScenario(next) {
      await admin(url, 'PUT', 'scenario', JSON.stringify(next));
    },
    async counters() {
      return (await admin(url, 'GET', 'counters')) as Record<string, SimulatorDeploymentCounters>;
    },
    async requests(deployment) {
      if (!deployment) throw new Error('requests(deployment): deployment is required');
      const result = await admin(url, 'GET', `requests?deployment=${encodeURIComponent(deployment)}`);
      // Accept either a bare array or { requests: [...] }.
      if (Array.isArray(result)) return result as SimulatorRequestRecord[];
      const wrapped = (result as { requests?: unknown })?.requests;
      return Array.isArray(wrapped) ? (wrapped as SimulatorRequestRecord[]) : [];
    },
    async reset() {
      await admin(url, 'POST', 'reset');
    },
    async stop() {
      await child.stop();
      if (dir) releaseTempDir(dir);
    },
  };
}
