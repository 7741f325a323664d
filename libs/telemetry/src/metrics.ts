import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/*
 * Metrics are prom-client instruments exposed in the Prometheus text format.
 * Why prom-client rather than OTel's Prometheus exporter: recording is on every
 * call's path, and a prom-client `inc` with five labels measured 2-4x cheaper
 * than an OTel SDK `counter.add` with the same five attributes (README
 * "Observability", `npm run bench -- metrics`); and the exposition names are exactly the
 * names the alert rules and the dashboard query, with no unit-suffix rewriting
 * in between. Traces stay OpenTelemetry.
 */

export type { Counter, Gauge, Histogram } from 'prom-client';
/** A registry of its own, for tests that assert a service's series in isolation. */
export { Registry } from 'prom-client';

/** One metric of a service's catalogue: its exposition name, meaning and label names. */
export interface MetricSpec<L extends string = string> {
  name: string;
  help: string;
  labels: readonly L[];
}

export interface HistogramSpec<L extends string = string> extends MetricSpec<L> {
  buckets: readonly number[];
}

/** Seconds buckets for call and attempt latency: 5 ms … 120 s (a provider call may take a minute). */
export const LATENCY_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;

let processRegistry: Registry | undefined;

/**
 * The registry of this process, created on first use with the standard process
 * metrics (CPU, memory, event-loop lag; read at scrape time, no timers). Every
 * service of a process records here, so the embedded demo's five services share
 * one `/metrics`.
 */
export function metricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/*
 * Get-or-create: a second instance of a service in the same process (tests,
 * the embedded demo) shares the first one's instruments instead of failing on
 * a duplicate name. A name registered with other labels is a programming error.
 */
function existing<M>(registry: Registry, spec: MetricSpec, kind: string): M | undefined {
  const found = registry.getSingleMetric(spec.name) as (M & { labelNames?: string[] }) | undefined;
  if (!found) return undefined;
  const labels = [...(found.labelNames ?? [])].sort().join(',');
  if (labels !== [...spec.labels].sort().join(',')) {
    throw new Error(`metric ${spec.name}: already registered with labels [${labels}], now asked for ${kind} with [${spec.labels.join(',')}]`);
  }
  return found;
}

export function counter<L extends string>(registry: Registry, spec: MetricSpec<L>): Counter<L> {
  return existing<Counter<L>>(registry, spec, 'counter') ?? new Counter({ name: spec.name, help: spec.help, labelNames: spec.labels, registers: [registry] });
}

/** `collect` runs at every scrape (it may be async: e.g. read the shared store) and sets the gauge's current values. */
export function gauge<L extends string>(registry: Registry, spec: MetricSpec<L>, collect?: (g: Gauge<L>) => void | Promise<void>): Gauge<L> {
  return (
    existing<Gauge<L>>(registry, spec, 'gauge') ??
    new Gauge<L>({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labels,
      registers: [registry],
      ...(collect
        ? {
            collect(this: Gauge<L>) {
              return collect(this);
            },
          }
        : {}),
    })
  );
}

export function histogram<L extends string>(registry: Registry, spec: HistogramSpec<L>): Histogram<L> {
  return (
    existing<Histogram<L>>(registry, spec, 'histogram') ??
    new Histogram({ name: spec.name, help: spec.help, labelNames: spec.labels, buckets: [...spec.buckets], registers: [registry] })
  );
}

export interface ServeMetricsOptions {
  /** TCP port; 0 = any free port (the bound one is returned). */
  port: number;
  /** Interface to bind; the service's GRPC_HOST. */
  host: string;
  /** Default: the process registry. */
  registry?: Registry;
  /** Names the variable in the start-up error (default METRICS_PORT). */
  portVariable?: string;
}

export interface MetricsEndpoint {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text format) on `host:port`. Rejects with
 * an error naming the variable and the port when it cannot be bound, so a
 * service whose metrics would be silently missing does not start at all.
 */
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsEndpoint> {
  const registry = options.registry ?? metricsRegistry();
  const variable = options.portVariable ?? 'METRICS_PORT';
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`),
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is already in use (another process, or a second replica on this host?)' : err.message;
      reject(new Error(`${variable} ${options.port}: cannot serve /metrics on ${options.host}:${options.port}: ${why}; set ${variable} to a free port (0 = any free port)`));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

/**
 * Runs a service behind its metrics endpoint: the endpoint is bound first (a
 * taken port stops start-up before any work is accepted), the service's
 * `stop` closes it last, and the result carries `metricsPort` for the
 * readiness line.
 */
export async function startWithMetrics<S extends { stop(): Promise<void> }>(
  options: ServeMetricsOptions,
  start: () => Promise<S>,
): Promise<S & { metricsPort: number }> {
  const endpoint = await serveMetrics(options);
  let service: S;
  try {
    service = await start();
  } catch (err) {
    await endpoint.close();
    throw err;
  }
  const stop = service.stop.bind(service);
  return Object.assign(service, {
    metricsPort: endpoint.port,
    stop: async () => {
      try {
        await stop();
      } finally {
        await endpoint.close();
      }
    },
  });
}
