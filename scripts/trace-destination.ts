/**
 * Where a process's spans go, and how to open one trace in Jaeger: the lines
 * `npm run demo` and `npm run stack` print, so a trace id on the screen leads
 * somewhere. Pure functions of the environment (no process.env here).
 */

type Env = Record<string, string | undefined>;

export type TraceDestination =
  /** Exported over OTLP to `endpoint` (the traces URL the exporter posts to). */
  | { kind: 'otlp'; endpoint: string; protocol: string }
  /** The demo's spans without an OTLP endpoint: kept in the process, gone when it exits. */
  | { kind: 'memory' }
  /** Not exported over OTLP; `reason` names the variable that says so. */
  | { kind: 'off'; reason: string };

/** Jaeger's UI when JAEGER_UI_URL is unset: the one deploy/compose.yaml publishes. */
export const DEFAULT_JAEGER_UI_URL = 'http://localhost:16686';
/** Starts only Jaeger from the compose file; it publishes OTLP on 4318 (HTTP) and 4317 (gRPC). */
export const START_JAEGER = 'docker compose -f deploy/compose.yaml up -d jaeger';
/** What to set for the local Jaeger START_JAEGER starts. */
export const LOCAL_OTLP_ENDPOINT = 'http://localhost:4318';

/** The SDK's own reading of a variable: unset and blank are the same. */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/**
 * The traces URL the OTLP exporter posts to: the signal-specific variable as
 * written, else the general one with `/v1/traces` appended (HTTP; gRPC takes
 * it as is), else the exporters' default.
 */
function tracesEndpoint(env: Env, protocol: string): string {
  const specific = read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific) return specific;
  const general = read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (protocol === 'grpc') return general ?? 'http://localhost:4317';
  return general ? `${general.replace(/\/$/, '')}/v1/traces` : `${LOCAL_OTLP_ENDPOINT}/v1/traces`;
}

/**
 * Where a service process (libs/telemetry startTelemetry) sends its spans
 * under `env`, by the SDK's rules (libs/telemetry spanProcessorsFromEnv, after
 * the NodeSDK's getSpanProcessorsFromEnv):
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER starting with `none` turn
 * tracing off; an exporter list without `otlp` exports elsewhere; otherwise OTLP.
 */
export function sdkTraceDestination(env: Env): TraceDestination {
  if (read(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { kind: 'off', reason: 'tracing off (OTEL_SDK_DISABLED=true)' };
  const exporters = [...new Set((read(env, 'OTEL_TRACES_EXPORTER') ?? '').split(',').map((s) => s.trim()).filter((s) => s && s !== 'null'))];
  if (exporters[0] === 'none') return { kind: 'off', reason: `tracing off (OTEL_TRACES_EXPORTER=${exporters.join(',')})` };
  // The SDK falls back to OTLP when the list is empty or names `none` after another exporter.
  const otlp = exporters.length === 0 || exporters.includes('otlp') || exporters.includes('none');
  if (!otlp) return { kind: 'off', reason: `not sent over OTLP (OTEL_TRACES_EXPORTER=${exporters.join(',')})` };
  const protocol = read(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? read(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  return { kind: 'otlp', endpoint: tracesEndpoint(env, protocol), protocol };
}

/**
 * The embedded demo keeps its spans in memory (a fresh machine has no
 * collector) and also exports them, as OTLP/HTTP JSON, only when an OTLP
 * endpoint is set; the SDK's off switches still apply.
 */
export function demoTraceDestination(env: Env): TraceDestination {
  const sdk = sdkTraceDestination(env);
  if (sdk.kind !== 'otlp') return sdk;
  if (!read(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') && !read(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')) return { kind: 'memory' };
  return { kind: 'otlp', endpoint: tracesEndpoint(env, 'http/json'), protocol: 'http/json' };
}

/** Jaeger's page for one trace: JAEGER_UI_URL (default DEFAULT_JAEGER_UI_URL) + /trace/<id>. */
export function jaegerTraceUrl(env: Env, traceId: string): string {
  return `${(read(env, 'JAEGER_UI_URL') ?? DEFAULT_JAEGER_UI_URL).replace(/\/+$/, '')}/trace/${traceId}`;
}

/** Whether `endpoint` is where START_JAEGER's Jaeger listens (so starting it is the fix for "nothing arrives"). */
function isLocalJaeger(endpoint: string): boolean {
  return /^https?:\/\/(localhost|127\.0\.0\.1):431[78](\/|$)/.test(endpoint);
}

/** One line: where the traces go, or why nowhere and how to send them to a local Jaeger. */
export function describeTraceDestination(destination: TraceDestination): string {
  if (destination.kind === 'otlp') {
    const local = isLocalJaeger(destination.endpoint) ? `; nothing listening there? ${START_JAEGER}` : '';
    return `OTLP ${destination.endpoint} (${destination.protocol})${local}`;
  }
  if (destination.kind === 'memory') {
    return `kept in memory only; to see them in Jaeger: ${START_JAEGER}, then run with OTEL_EXPORTER_OTLP_ENDPOINT=${LOCAL_OTLP_ENDPOINT}`;
  }
  return destination.reason;
}

/**
 * How to open a trace in Jaeger: `traceId` (default a placeholder for any id
 * the output shows) at its Jaeger URL when the spans are exported; when they
 * are kept in memory, how the next run's would be; nothing when tracing is off.
 */
export function jaegerHint(env: Env, destination: TraceDestination, traceId = '<trace id>'): string | undefined {
  if (destination.kind === 'otlp') return `open in Jaeger: ${jaegerTraceUrl(env, traceId)}`;
  if (destination.kind === 'memory') {
    return `in memory only: with OTEL_EXPORTER_OTLP_ENDPOINT=${LOCAL_OTLP_ENDPOINT} a run's traces open at ${jaegerTraceUrl(env, '<trace id>')}`;
  }
  return undefined;
}
