import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** A span as received over OTLP/HTTP JSON, flattened for assertions. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty string for a root span. */
  parentSpanId: string;
  name: string;
  kind: 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
  /** `service.name` from the resource. */
  serviceName: string;
  /** Instrumentation scope name (e.g. `@opentelemetry/instrumentation-grpc`). */
  scope: string;
  attributes: Record<string, unknown>;
  status: { code: number; message?: string };
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends `/v1/traces`). */
  readonly url: string;
  readonly port: number;
  /** Environment that makes a child process export here as OTLP/HTTP JSON, flushing fast. */
  readonly env: Record<string, string>;
  spans(): ReceivedSpan[];
  /** Resolves with all spans once `predicate(allSpans)` holds; rejects listing what arrived on timeout. */
  waitForSpans(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  clear(): void;
  stop(): Promise<void>;
}

const KINDS: ReceivedSpan['kind'][] = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
  bytesValue?: string;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}

function decodeValue(value: AnyValue | undefined): unknown {
  if (!value) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(decodeValue);
  if (value.kvlistValue) return decodeAttributes(value.kvlistValue.values);
  if (value.bytesValue !== undefined) return value.bytesValue;
  return undefined;
}

function decodeAttributes(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = decodeValue(value);
  return out;
}

/** OTLP JSON carries ids as hex; tolerate base64 from exporters that get it wrong. */
function normaliseId(id: string | undefined, bytes: number): string {
  if (!id) return '';
  if (id.length === bytes * 2 && /^[0-9a-f]+$/i.test(id)) return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

interface ExportRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{
      scope?: { name?: string };
      spans?: Array<{
        traceId?: string;
        spanId?: string;
        parentSpanId?: string;
        name?: string;
        kind?: number;
        attributes?: KeyValue[];
        status?: { code?: number; message?: string };
      }>;
    }>;
  }>;
}

/** Flattens one OTLP ExportTraceServiceRequest (JSON encoding). */
export function flattenOtlpJson(request: ExportRequest): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = decodeAttributes(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: normaliseId(span.traceId, 16),
          spanId: normaliseId(span.spanId, 8),
          parentSpanId: normaliseId(span.parentSpanId, 8),
          name: span.name ?? '',
          kind: KINDS[span.kind ?? 0] ?? 'UNSPECIFIED',
          serviceName: String(resource['service.name'] ?? ''),
          scope: scopeSpans.scope?.name ?? '',
          attributes: decodeAttributes(span.attributes),
          status: { code: span.status?.code ?? 0, ...(span.status?.message ? { message: span.status.message } : {}) },
        });
      }
    }
  }
  return spans;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
}

/**
 * An OTLP/HTTP trace collector in the test process, so tests can assert the
 * spans real child processes export (what Jaeger would show) without Jaeger.
 * Only the JSON encoding is accepted: point processes at it with `receiver.env`.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received: ReceivedSpan[] = [];
  const waiters = new Set<() => void>();

  const server = createServer(async (req, res) => {
    try {
      if (req.method !== 'POST' || !req.url?.startsWith('/v1/traces')) {
        res.writeHead(404).end();
        return;
      }
      const type = req.headers['content-type'] ?? '';
      if (!type.includes('json')) {
        res.writeHead(415, { 'content-type': 'text/plain' });
        res.end(`this test receiver accepts only OTLP/HTTP JSON; set OTEL_EXPORTER_OTLP_PROTOCOL=http/json (got ${type})`);
        return;
      }
      const body = JSON.parse((await readBody(req)).toString('utf8')) as ExportRequest;
      received.push(...flattenOtlpJson(body));
      for (const wake of waiters) wake();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      // Export quickly so tests do not wait for the default 5 s batch delay.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
    spans: () => [...received],
    clear: () => {
      received.length = 0;
    },
    waitForSpans(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate([...received])) return false;
          cleanup();
          resolve([...received]);
          return true;
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        const timer = setTimeout(() => {
          cleanup();
          const seen = received.map((s) => `${s.serviceName}:${s.kind}:${s.name} trace=${s.traceId}`).join('\n  ');
          reject(new Error(`spans did not match within ${timeoutMs} ms; received ${received.length}:\n  ${seen}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
