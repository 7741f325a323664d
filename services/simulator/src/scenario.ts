import { parse as parseYaml } from 'yaml';

/**
 * A scenario describes how the simulated providers behave: per deployment,
 * limits, latency, injected faults and outages. It is validated once when
 * loaded (never per request) and then resolved into flat per-deployment
 * settings the hot path reads directly.
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

/**
 * Used when no --scenario is given: the common deployments, no faults, no
 * latency, and limits high enough that only a load test notices them (so the
 * rate-limit headers are always present, as with the real providers).
 */
export const BUILT_IN_SCENARIO: Scenario = {
  seed: 1,
  strictModels: false,
  apiKeys: null,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: {
    'gpt-4o': { contextWindow: 128_000 },
    'gpt-4o-mini': { contextWindow: 128_000 },
    'claude-sonnet-4-6': { contextWindow: 200_000 },
    'claude-haiku-4-5': { contextWindow: 200_000 },
  },
};

export class ScenarioError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ScenarioError';
  }
}

/** Parses YAML (or JSON, a YAML subset) scenario text and validates it. */
export function parseScenarioText(text: string): Scenario {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ScenarioError([`scenario: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  return validateScenario(raw ?? {});
}

/** Validates an untrusted scenario object; throws ScenarioError listing every problem with its key path. */
export function validateScenario(raw: unknown): Scenario {
  const problems: string[] = [];
  const scenario: Scenario = { seed: 1, strictModels: false, apiKeys: null, defaults: {}, deployments: {} };
  if (!isPlainObject(raw)) throw new ScenarioError([`scenario: must be a mapping, got ${describe(raw)}`]);
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'seed':
        if (isInteger(value, problems, 'seed', 0)) scenario.seed = value;
        break;
      case 'strictModels':
        if (isBoolean(value, problems, 'strictModels')) scenario.strictModels = value;
        break;
      case 'apiKeys':
        if (value === null) break;
        if (!Array.isArray(value)) problems.push(`apiKeys: must be a list of strings, got ${describe(value)}`);
        else {
          value.forEach((k, i) => {
            if (typeof k !== 'string' || k.length === 0) problems.push(`apiKeys[${i}]: must be a non-empty string, got ${describe(k)}`);
          });
          scenario.apiKeys = value as string[];
        }
        break;
      case 'defaults':
        if (value !== null) scenario.defaults = validateDeployment(value, 'defaults', problems);
        break;
      case 'deployments':
        if (value === null) break;
        if (!isPlainObject(value)) {
          problems.push(`deployments: must be a mapping of deployment name to settings, got ${describe(value)}`);
          break;
        }
        for (const [name, block] of Object.entries(value)) {
          scenario.deployments[name] = block === null ? {} : validateDeployment(block, `deployments.${name}`, problems);
        }
        break;
      default:
        problems.push(`${key}: unknown key (expected one of seed, strictModels, apiKeys, defaults, deployments)`);
    }
  }
  // Rates are checked again after merging, because defaults + overrides may together exceed 1.
  if (problems.length === 0) {
    for (const name of Object.keys(scenario.deployments)) {
      const merged = resolveDeployment(scenario, name).faults;
      const sum = Object.values(merged).reduce((a, b) => a + (b ?? 0), 0);
      if (sum > 1 + 1e-9) problems.push(`deployments.${name}.faults: rates (with defaults) must sum to at most 1, got ${round(sum)}`);
    }
  }
  if (problems.length > 0) throw new ScenarioError(problems);
  return scenario;
}

const DEPLOYMENT_KEYS = Object.keys(DEPLOYMENT_DEFAULTS).concat('model');

function validateDeployment(raw: unknown, path: string, problems: string[]): DeploymentOverrides {
  const out: DeploymentOverrides = {};
  if (!isPlainObject(raw)) {
    problems.push(`${path}: must be a mapping, got ${describe(raw)}`);
    return out;
  }
  for (const [key, value] of Object.entries(raw)) {
    const p = `${path}.${key}`;
    switch (key) {
      case 'model':
        if (typeof value === 'string' && value.length > 0) out.model = value;
        else problems.push(`${p}: must be a non-empty string, got ${describe(value)}`);
        break;
      case 'contextWindow':
      case 'defaultMaxTokens':
        if (isInteger(value, problems, p, 1)) out[key] = value;
        break;
      case 'retryAfterMs':
        if (isNumber(value, problems, p, 0)) out.retryAfterMs = value;
        break;
      case 'cutAfterChunks':
      case 'streamErrorAfterChunks':
        if (value === null || isInteger(value, problems, p, 0)) out[key] = value as number | null;
        break;
      case 'streamFaultRate':
        if (isRate(value, problems, p)) out.streamFaultRate = value;
        break;
      case 'limits': {
        if (!isPlainObject(value)) {
          problems.push(`${p}: must be a mapping with rpm, tpm and/or windowMs, got ${describe(value)}`);
          break;
        }
        const limits: { rpm?: number | null; tpm?: number | null; windowMs?: number } = {};
        for (const [lk, lv] of Object.entries(value)) {
          if (lk === 'windowMs') {
            if (isInteger(lv, problems, `${p}.${lk}`, 100)) limits.windowMs = lv;
          } else if (lk !== 'rpm' && lk !== 'tpm') problems.push(`${p}.${lk}: unknown key (expected rpm, tpm, windowMs)`);
          else if (lv === null || isInteger(lv, problems, `${p}.${lk}`, 1)) limits[lk] = lv as number | null;
        }
        out.limits = limits;
        break;
      }
      case 'reply': {
        if (!isPlainObject(value)) {
          problems.push(`${p}: must be a mapping with minTokens and/or maxTokens, got ${describe(value)}`);
          break;
        }
        const reply: { minTokens?: number; maxTokens?: number } = {};
        for (const [rk, rv] of Object.entries(value)) {
          if (rk !== 'minTokens' && rk !== 'maxTokens') problems.push(`${p}.${rk}: unknown key (expected minTokens, maxTokens)`);
          else if (isInteger(rv, problems, `${p}.${rk}`, 3)) reply[rk] = rv;
        }
        if (reply.minTokens !== undefined && reply.maxTokens !== undefined && reply.maxTokens < reply.minTokens) {
          problems.push(`${p}.maxTokens: must be at least minTokens (${reply.minTokens}), got ${reply.maxTokens}`);
        }
        out.reply = reply;
        break;
      }
      case 'latency': {
        if (!isPlainObject(value)) {
          problems.push(`${p}: must be a mapping with firstToken and/or perToken, got ${describe(value)}`);
          break;
        }
        const latency: { firstToken?: Distribution; perToken?: Distribution } = {};
        for (const [lk, lv] of Object.entries(value)) {
          if (lk !== 'firstToken' && lk !== 'perToken') problems.push(`${p}.${lk}: unknown key (expected firstToken, perToken)`);
          else {
            const d = validateDistribution(lv, `${p}.${lk}`, problems);
            if (d) latency[lk] = d;
          }
        }
        out.latency = latency;
        break;
      }
      case 'faults': {
        if (!isPlainObject(value)) {
          problems.push(`${p}: must be a mapping of fault kind to rate, got ${describe(value)}`);
          break;
        }
        const faults: Partial<Record<FaultKind, number>> = {};
        let sum = 0;
        for (const [fk, fv] of Object.entries(value)) {
          if (!isFaultKind(fk)) problems.push(`${p}.${fk}: unknown fault kind (expected one of ${FAULT_KINDS.join(', ')})`);
          else if (isRate(fv, problems, `${p}.${fk}`)) {
            faults[fk] = fv;
            sum += fv;
          }
        }
        if (sum > 1 + 1e-9) problems.push(`${p}: rates must sum to at most 1, got ${round(sum)}`);
        out.faults = faults;
        break;
      }
      case 'shouldRetry': {
        if (value === null || typeof value === 'boolean') {
          out.shouldRetry = value as boolean | null;
          break;
        }
        if (!isPlainObject(value)) {
          problems.push(`${p}: must be true, false, or a mapping of fault kind to boolean, got ${describe(value)}`);
          break;
        }
        const map: Partial<Record<FaultKind, boolean>> = {};
        for (const [fk, fv] of Object.entries(value)) {
          if (!isFaultKind(fk)) problems.push(`${p}.${fk}: unknown fault kind (expected one of ${FAULT_KINDS.join(', ')})`);
          else if (isBoolean(fv, problems, `${p}.${fk}`)) map[fk] = fv;
        }
        out.shouldRetry = map;
        break;
      }
      case 'outages': {
        if (!Array.isArray(value)) {
          problems.push(`${p}: must be a list of {from, to, kind|status}, got ${describe(value)}`);
          break;
        }
        out.outages = value.map((w, i) => validateOutage(w, `${p}[${i}]`, problems));
        break;
      }
      default:
        problems.push(`${p}: unknown key (expected one of ${DEPLOYMENT_KEYS.join(', ')})`);
    }
  }
  return out;
}

function validateOutage(raw: unknown, path: string, problems: string[]): OutageWindow {
  const out: OutageWindow = { from: 0, to: 0 };
  if (!isPlainObject(raw)) {
    problems.push(`${path}: must be a mapping {from, to, kind|status}, got ${describe(raw)}`);
    return out;
  }
  const times: Record<'from' | 'to', number | undefined> = { from: undefined, to: undefined };
  for (const [key, value] of Object.entries(raw)) {
    const p = `${path}.${key}`;
    if (key === 'from' || key === 'to') {
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
        out[key] = value;
        times[key] = value;
      } else if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) {
        out[key] = value;
        times[key] = Date.parse(value);
      } else if (value instanceof Date) {
        out[key] = value.toISOString();
        times[key] = value.getTime();
      } else problems.push(`${p}: must be milliseconds since scenario load (≥ 0) or an ISO 8601 instant, got ${describe(value)}`);
    } else if (key === 'kind') {
      if (isFaultKind(value)) out.kind = value;
      else problems.push(`${p}: unknown fault kind ${describe(value)} (expected one of ${FAULT_KINDS.join(', ')})`);
    } else if (key === 'status') {
      if (typeof value === 'number' && STATUS_TO_KIND[value]) out.status = value;
      else problems.push(`${p}: must be one of ${Object.keys(STATUS_TO_KIND).join(', ')}, got ${describe(value)}`);
    } else problems.push(`${p}: unknown key (expected from, to, kind, status)`);
  }
  if (!('from' in raw)) problems.push(`${path}.from: required`);
  if (!('to' in raw)) problems.push(`${path}.to: required`);
  if ('kind' in raw && 'status' in raw) problems.push(`${path}: give kind or status, not both`);
  // Mixed relative/absolute bounds cannot be compared until load time; same-kind bounds must be ordered.
  if (times.from !== undefined && times.to !== undefined && typeof out.from === typeof out.to && times.to <= times.from) {
    problems.push(`${path}.to: must be after from (${String(out.from)}), got ${String(out.to)}`);
  }
  return out;
}

function validateDistribution(raw: unknown, path: string, problems: string[]): Distribution | undefined {
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw) || raw < 0) problems.push(`${path}: must be ≥ 0 ms, got ${raw}`);
    else return { fixed: raw };
    return undefined;
  }
  if (!isPlainObject(raw) || Object.keys(raw).length !== 1) {
    problems.push(`${path}: must be a number of ms or exactly one of {fixed}, {uniform: {min, max}}, {lognormal: {p50, p99}}, got ${describe(raw)}`);
    return undefined;
  }
  const [kind, v] = Object.entries(raw)[0]!;
  const p = `${path}.${kind}`;
  const before = problems.length;
  switch (kind) {
    case 'fixed':
      if (isNumber(v, problems, p, 0)) return { fixed: v };
      return undefined;
    case 'uniform': {
      const r = numbers(v, ['min', 'max'], p, problems);
      if (!r) return undefined;
      if (r.min! < 0) problems.push(`${p}.min: must be ≥ 0, got ${r.min}`);
      if (r.max! < r.min!) problems.push(`${p}.max: must be ≥ min (${r.min}), got ${r.max}`);
      return problems.length === before ? { uniform: { min: r.min!, max: r.max! } } : undefined;
    }
    case 'lognormal': {
      const r = numbers(v, ['p50', 'p99'], p, problems);
      if (!r) return undefined;
      if (r.p50! <= 0) problems.push(`${p}.p50: must be > 0, got ${r.p50}`);
      if (r.p99! < r.p50!) problems.push(`${p}.p99: must be ≥ p50 (${r.p50}), got ${r.p99}`);
      return problems.length === before ? { lognormal: { p50: r.p50!, p99: r.p99! } } : undefined;
    }
    default:
      problems.push(`${p}: unknown distribution (expected fixed, uniform, lognormal)`);
      return undefined;
  }
}

function numbers(raw: unknown, keys: string[], path: string, problems: string[]): Record<string, number> | undefined {
  if (!isPlainObject(raw)) {
    problems.push(`${path}: must be a mapping with ${keys.join(', ')}, got ${describe(raw)}`);
    return undefined;
  }
  const out: Record<string, number> = {};
  let ok = true;
  for (const key of Object.keys(raw)) {
    if (!keys.includes(key)) {
      problems.push(`${path}.${key}: unknown key (expected ${keys.join(', ')})`);
      ok = false;
    }
  }
  for (const key of keys) {
    if (!(key in raw)) {
      problems.push(`${path}.${key}: required`);
      ok = false;
    } else if (isNumber(raw[key], problems, `${path}.${key}`, -Infinity)) out[key] = raw[key] as number;
    else ok = false;
  }
  return ok ? out : undefined;
}

/** Merges built-in defaults, the scenario's `defaults`, and the deployment's own block (later wins, per key). */
export function resolveDeployment(scenario: Scenario, name: string): DeploymentSettings {
  const layers = [scenario.defaults, scenario.deployments[name] ?? {}];
  const out: DeploymentSettings = {
    ...DEPLOYMENT_DEFAULTS,
    limits: { ...DEPLOYMENT_DEFAULTS.limits },
    reply: { ...DEPLOYMENT_DEFAULTS.reply },
    latency: { ...DEPLOYMENT_DEFAULTS.latency },
    faults: {},
  };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer) as [keyof DeploymentSettings, unknown][]) {
      if (key === 'limits' || key === 'reply' || key === 'latency' || key === 'faults') {
        Object.assign(out[key], value);
      } else if (key === 'shouldRetry' && isPlainObject(value) && isPlainObject(out.shouldRetry)) {
        out.shouldRetry = { ...out.shouldRetry, ...value };
      } else {
        (out as unknown as Record<string, unknown>)[key] = value;
      }
    }
  }
  if (out.reply.maxTokens < out.reply.minTokens) out.reply.maxTokens = out.reply.minTokens;
  return out;
}

function isFaultKind(v: unknown): v is FaultKind {
  return typeof v === 'string' && (FAULT_KINDS as readonly string[]).includes(v);
}
function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}
function isBoolean(v: unknown, problems: string[], path: string): v is boolean {
  if (typeof v === 'boolean') return true;
  problems.push(`${path}: must be true or false, got ${describe(v)}`);
  return false;
}
function isNumber(v: unknown, problems: string[], path: string, min: number): v is number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    problems.push(`${path}: must be a number, got ${describe(v)}`);
    return false;
  }
  if (v < min) {
    problems.push(`${path}: must be ≥ ${min}, got ${v}`);
    return false;
  }
  return true;
}
function isInteger(v: unknown, problems: string[], path: string, min: number): v is number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    problems.push(`${path}: must be an integer, got ${describe(v)}`);
    return false;
  }
  if (v < min) {
    problems.push(`${path}: must be ≥ ${min}, got ${v}`);
    return false;
  }
  return true;
}
function isRate(v: unknown, problems: string[], path: string): v is number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    problems.push(`${path}: must be a number between 0 and 1, got ${describe(v)}`);
    return false;
  }
  if (v < 0 || v > 1) {
    problems.push(`${path}: must be between 0 and 1, got ${v}`);
    return false;
  }
  return true;
}
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}
function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
