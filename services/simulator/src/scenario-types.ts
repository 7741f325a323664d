/**
 * The scenario's vocabulary: fault kinds, per-deployment settings and their
 * defaults. Shared by the schema (scenario-schema.ts) and the loader
 * (scenario.ts), which re-exports it.
 */

/** Every fault the simulator can inject. Error shapes per provider live in openai.ts / anthropic.ts. */
export const FAULT_KINDS = [
  'rate_limit',
  'insufficient_quota',
  'spend_limit',
  'server_error',
  'bad_gateway',
  'unavailable',
  'gateway_timeout',
  'overloaded',
  'context_length',
  'content_policy',
  'content_filter',
  'unauthorized',
  'forbidden',
  'not_found',
  'too_large',
  'hang',
  'reset',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Latency distribution in milliseconds. A bare number in YAML means `{ fixed: n }`. */
export type Distribution =
  | { fixed: number }
  | { uniform: { min: number; max: number } }
  | { lognormal: { p50: number; p99: number } };

/** A window (ms relative to scenario load, or absolute ISO 8601) during which every request fails. */
export interface OutageWindow {
  from: number | string;
  to: number | string;
  /** Fault to answer with; default `unavailable`. Mutually exclusive with `status`. */
  kind?: FaultKind;
  /** HTTP status to answer with, mapped to its fault kind (see STATUS_TO_KIND). */
  status?: number;
}

/** Per-deployment behaviour; every key optional in YAML, defaults in DEPLOYMENT_DEFAULTS. */
export interface DeploymentSettings {
  /** Model name reported in responses (default: the deployment name). */
  model?: string;
  contextWindow: number;
  /** rpm / tpm per `windowMs` (60 s, as the providers count; shorter only for time-scaled load tests). */
  limits: { rpm: number | null; tpm: number | null; windowMs: number };
  defaultMaxTokens: number;
  reply: { minTokens: number; maxTokens: number };
  latency: { firstToken: Distribution; perToken: Distribution };
  faults: Partial<Record<FaultKind, number>>;
  shouldRetry: boolean | Partial<Record<FaultKind, boolean>> | null;
  retryAfterMs: number;
  outages: OutageWindow[];
  cutAfterChunks: number | null;
  streamErrorAfterChunks: number | null;
  streamFaultRate: number;
}

export type DeploymentOverrides = DeepPartial<DeploymentSettings>;
type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]> | T[K]) : T[K] };

/** A validated scenario, as GET /_admin/scenario returns it. */
export interface Scenario {
  seed: number;
  strictModels: boolean;
  apiKeys: string[] | null;
  defaults: DeploymentOverrides;
  deployments: Record<string, DeploymentOverrides>;
}

/** Defaults for every deployment key; documented in scenarios/default.yaml and the README. */
export const DEPLOYMENT_DEFAULTS: DeploymentSettings = {
  contextWindow: 128_000,
  limits: { rpm: null, tpm: null, windowMs: 60_000 },
  defaultMaxTokens: 1024,
  reply: { minTokens: 8, maxTokens: 48 },
  latency: { firstToken: { fixed: 0 }, perToken: { fixed: 0 } },
  faults: {},
  shouldRetry: null,
  retryAfterMs: 1000,
  outages: [],
  cutAfterChunks: null,
  streamErrorAfterChunks: null,
  streamFaultRate: 1,
};

/** Statuses an outage may name, and the fault each stands for. */
export const STATUS_TO_KIND: Record<number, FaultKind> = {
  400: 'content_policy',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  413: 'too_large',
  429: 'rate_limit',
  500: 'server_error',
  502: 'bad_gateway',
  503: 'unavailable',
  504: 'gateway_timeout',
  529: 'overloaded',
};
