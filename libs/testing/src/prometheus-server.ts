import { startServerProcess, type ServerHandle } from './server-process';

export interface StartPrometheusOptions {
  /** prometheus.yml to load (rule_files relative to it). */
  configFile: string;
  /** Path or name of the binary. Default `prometheus` on PATH (Debian package `prometheus`). */
  binary?: string;
}

/** One sample of an instant query: the series' labels and its value. */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

export interface PrometheusHandle extends ServerHandle {
  /** Instant query through the HTTP API (`/api/v1/query`); rejects on a query error. */
  query(expr: string): Promise<PromSample[]>;
  /** Active alerts (`/api/v1/alerts`): pending and firing. */
  alerts(): Promise<PromAlert[]>;
  /** Scrape targets and their health (`/api/v1/targets`). */
  targets(): Promise<{ job: string; health: string; lastError: string }[]>;
}

async function api<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? res.status}`);
  return body.data;
}

/**
 * Starts a real Prometheus on 127.0.0.1 and a free port with a fresh TSDB in
 * a temp dir, loading `configFile`. Ready once `/-/ready` answers 200.
 */
export async function startPrometheus(options: StartPrometheusOptions): Promise<PrometheusHandle> {
  const server = await startServerProcess({
    name: 'prometheus',
    command: options.binary ?? 'prometheus',
    scheme: 'http',
    needsDir: true,
    args: (port, dir) => ['--config.file', options.configFile, '--storage.tsdb.path', dir!, '--web.listen-address', `127.0.0.1:${port}`],
    probe: { send: 'GET /-/ready HTTP/1.0\r\n\r\n', expect: 'HTTP/1.' },
    readyTimeoutMs: 30_000,
  });
  const base = `http://127.0.0.1:${server.port}`;
  for (const deadline = Date.now() + 30_000; ; ) {
    const ready = await fetch(`${base}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`prometheus did not become ready:\n${server.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ...server,
    url: base,
    async query(expr) {
      const data = await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(base, `/api/v1/query?query=${encodeURIComponent(expr)}`);
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async alerts() {
      const data = await api<{ alerts: { labels: Record<string, string>; state: 'pending' | 'firing' }[] }>(base, '/api/v1/alerts');
      return data.alerts.map((a) => ({ labels: a.labels, state: a.state }));
    },
    async targets() {
      const data = await api<{ activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] }>(base, '/api/v1/targets');
      return data.activeTargets.map((t) => ({ job: t.labels.job ?? '', health: t.health, lastError: t.lastError }));
    },
  };
}
