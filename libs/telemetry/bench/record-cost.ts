/**
 * `npm run bench -- metrics`: cost of recording one sample, prom-client (what
 * the services use) beside the OTel metrics SDK, with the router's label shapes.
 * Why prom-client was chosen (README "Observability"); issue 15 cares about
 * per-call CPU. Arg: iterations (default 1,000,000).
 */
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { Counter, Histogram, Registry } from 'prom-client';

const n = Number(process.argv[2] ?? 1_000_000);
const routes = ['chat', 'fast', 'cheap', 'long'];
const tenants = ['acme', 'globex', 'initech'];
const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function time(name: string, fn: (i: number) => void): void {
  for (let i = 0; i < 100_000; i++) fn(i);
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  console.log(`${name.padEnd(48)} ${(Number(process.hrtime.bigint() - started) / n).toFixed(0)} ns/record`);
}

// With a reader attached, as a service exporting its metrics has (without one the SDK records nothing).
const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 });
const meter = new MeterProvider({ readers: [reader] }).getMeter('bench');
const otelCounter = meter.createCounter('calls');
const otelHistogram = meter.createHistogram('latency', { advice: { explicitBucketBoundaries: buckets } });
const registry = new Registry();
const promCounter = new Counter({ name: 'calls', help: 'h', labelNames: ['route', 'tenant', 'grpc_status', 'cache_status', 'degraded'], registers: [registry] });
const promHistogram = new Histogram({ name: 'latency', help: 'h', labelNames: ['route'], buckets, registers: [registry] });

const labels = (i: number) => ({ route: routes[i & 3]!, tenant: tenants[i % 3]!, grpc_status: 'OK', cache_status: 'miss', degraded: 'false' });
time('OTel SDK counter.add, 5 attributes', (i) => otelCounter.add(1, labels(i)));
time('prom-client counter.inc, 5 labels', (i) => promCounter.inc(labels(i)));
time('OTel SDK histogram.record, 1 attribute', (i) => otelHistogram.record(0.1 * (i & 7), { route: routes[i & 3]! }));
time('prom-client histogram.observe, 1 label', (i) => promHistogram.observe({ route: routes[i & 3]! }, 0.1 * (i & 7)));
void reader.shutdown();
