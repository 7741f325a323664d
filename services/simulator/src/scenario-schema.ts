import { z } from 'zod';
import type { $ZodRawIssue } from 'zod/v4/core';
import { DEPLOYMENT_DEFAULTS, FAULT_KINDS, STATUS_TO_KIND, type Distribution, type FaultKind } from './scenario-types';

/**
 * The scenario file's schema, in the style of libs/config's: the shape and
 * every bound in one place. Messages name the problem and the value given
 * (`must be ≥ 1, got 0`); `scenarioProblems` prefixes each with its key path,
 * so an operator can fix every problem in one pass.
 */

type Issue = $ZodRawIssue;

/** How a value reads in a message: strings quoted, containers by kind. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** `<what>, got <value>`, or `required` where the key is absent. */
function got(what: string) {
  return { error: (iss: Issue) => (iss.input === undefined ? 'required' : `${what}, got ${describe(iss.input)}`) };
}

function atLeast(min: number) {
  return { error: (iss: Issue) => `must be ≥ ${min}, got ${String(iss.input)}` };
}

/** The error of a closed mapping: wrong type, or (per key, see scenarioProblems) a key it does not name. */
function closed(what: string, unknown: string) {
  return { error: (iss: Issue) => (iss.code === 'unrecognized_keys' ? unknown : `must be ${what}, got ${describe(iss.input)}`) };
}

/** A mapping that rejects keys it does not name; each unknown key is told what is allowed. */
function mapping<T extends z.ZodRawShape>(shape: T, what: string, unknown: string) {
  return z.strictObject(shape, closed(what, unknown));
}

const integer = (min: number) =>
  z
    .number(got('must be an integer'))
    .int({ ...got('must be an integer'), abort: true })
    .min(min, atLeast(min));
const number = (min: number) => z.number(got('must be a number')).min(min, atLeast(min));
const rate = z
  .number(got('must be a number between 0 and 1'))
  .min(0, got('must be between 0 and 1'))
  .max(1, got('must be between 0 and 1'));
const boolean = z.boolean(got('must be true or false'));
const nonEmptyString = z.string(got('must be a non-empty string')).min(1, got('must be a non-empty string'));

const faultKindList = FAULT_KINDS.join(', ');

/** A mapping keyed by fault kind, in the order given (the fault dice walk it in that order). */
function byFaultKind<T extends z.ZodType>(value: T, what: string) {
  return z.partialRecord(z.enum(FAULT_KINDS), value, closed(what, `unknown fault kind (expected one of ${faultKindList})`));
}

const DISTRIBUTION_SHAPES = 'a number of ms or exactly one of {fixed}, {uniform: {min, max}}, {lognormal: {p50, p99}}';

function pair<A extends string, B extends string>(a: A, b: B, aMin: number) {
  return mapping({ [a]: number(aMin), [b]: number(-Infinity) } as Record<A | B, z.ZodNumber>, `a mapping with ${a}, ${b}`, `unknown key (expected ${a}, ${b})`);
}

const uniform = pair('min', 'max', 0).superRefine((r, ctx) => {
  if (r.max < r.min) ctx.addIssue({ code: 'custom', path: ['max'], message: `must be ≥ min (${r.min}), got ${r.max}` });
});
const lognormal = pair('p50', 'p99', -Infinity).superRefine((r, ctx) => {
  if (r.p50 <= 0) ctx.addIssue({ code: 'custom', path: ['p50'], message: `must be > 0, got ${r.p50}` });
  else if (r.p99 < r.p50) ctx.addIssue({ code: 'custom', path: ['p99'], message: `must be ≥ p50 (${r.p50}), got ${r.p99}` });
});

/** A bare number means `{ fixed: n }`; otherwise exactly one named distribution. */
const distribution = z.union(
  [
    z
      .number()
      .min(0, { error: (iss) => `must be ≥ 0 ms, got ${String(iss.input)}` }),
    z
      .custom<Record<string, unknown>>((v) => isPlainObject(v) && Object.keys(v).length === 1, { abort: true })
      .pipe(
        mapping(
          { fixed: number(0).optional(), uniform: uniform.optional(), lognormal: lognormal.optional() },
          DISTRIBUTION_SHAPES,
          'unknown distribution (expected fixed, uniform, lognormal)',
        ),
      ),
  ],
  got(`must be ${DISTRIBUTION_SHAPES}`),
).transform((d) => (typeof d === 'number' ? { fixed: d } : d) as Distribution);

const INSTANT = 'must be milliseconds since scenario load (≥ 0) or an ISO 8601 instant';
/** Milliseconds after load, or an absolute instant (kept as ISO text; YAML may hand over a Date). */
const instant = z.union(
  [
    z.number(got(INSTANT)).min(0, got(INSTANT)),
    z.string().refine((s) => !Number.isNaN(Date.parse(s)), { ...got(INSTANT), abort: true }),
    z.date().transform((d) => d.toISOString()),
  ],
  got(INSTANT),
);
const instantMs = (v: number | string): number => (typeof v === 'number' ? v : Date.parse(v));

const outage = mapping(
  {
    from: instant,
    to: instant,
    kind: z.enum(FAULT_KINDS, { error: (iss) => `unknown fault kind ${describe(iss.input)} (expected one of ${faultKindList})` }).optional(),
    status: z
      .custom<number>((v) => typeof v === 'number' && STATUS_TO_KIND[v] !== undefined, got(`must be one of ${Object.keys(STATUS_TO_KIND).join(', ')}`))
      .optional(),
  },
  'a mapping {from, to, kind|status}',
  'unknown key (expected from, to, kind, status)',
).superRefine((w, ctx) => {
  if (w.kind !== undefined && w.status !== undefined) ctx.addIssue({ code: 'custom', path: [], message: 'give kind or status, not both' });
  // Mixed relative/absolute bounds cannot be compared until load time; same-kind bounds must be ordered.
  if (typeof w.from === typeof w.to && instantMs(w.to) <= instantMs(w.from)) {
    ctx.addIssue({ code: 'custom', path: ['to'], message: `must be after from (${String(w.from)}), got ${String(w.to)}` });
  }
});

/** A sum over rates means something only when every rate is one. */
const onlyWhenValid = { when: (payload: { issues: unknown[] }) => payload.issues.length === 0 };

const faults = byFaultKind(rate, 'a mapping of fault kind to rate').superRefine((f, ctx) => {
  const sum = sumRates(f);
  if (sum > 1 + 1e-9) ctx.addIssue({ code: 'custom', path: [], message: `rates must sum to at most 1, got ${round(sum)}` });
}, onlyWhenValid);

const SHOULD_RETRY = 'must be true, false, or a mapping of fault kind to boolean';

const DEPLOYMENT_KEYS = Object.keys(DEPLOYMENT_DEFAULTS).concat('model').join(', ');

/** One deployment's overrides (or `defaults`): every key optional, layered by resolveDeployment. */
const deployment = mapping(
  {
    model: nonEmptyString.optional(),
    contextWindow: integer(1).optional(),
    defaultMaxTokens: integer(1).optional(),
    retryAfterMs: number(0).optional(),
    cutAfterChunks: integer(0).nullable().optional(),
    streamErrorAfterChunks: integer(0).nullable().optional(),
    streamFaultRate: rate.optional(),
    limits: mapping(
      { rpm: integer(1).nullable().optional(), tpm: integer(1).nullable().optional(), windowMs: integer(100).optional() },
      'a mapping with rpm, tpm and/or windowMs',
      'unknown key (expected rpm, tpm, windowMs)',
    ).optional(),
    reply: mapping(
      { minTokens: integer(3).optional(), maxTokens: integer(3).optional() },
      'a mapping with minTokens and/or maxTokens',
      'unknown key (expected minTokens, maxTokens)',
    )
      .superRefine((r, ctx) => {
        if (r.minTokens !== undefined && r.maxTokens !== undefined && r.maxTokens < r.minTokens) {
          ctx.addIssue({ code: 'custom', path: ['maxTokens'], message: `must be at least minTokens (${r.minTokens}), got ${r.maxTokens}` });
        }
      })
      .optional(),
    latency: mapping(
      { firstToken: distribution.optional(), perToken: distribution.optional() },
      'a mapping with firstToken and/or perToken',
      'unknown key (expected firstToken, perToken)',
    ).optional(),
    faults: faults.optional(),
    shouldRetry: z.union([z.boolean(), z.null(), byFaultKind(boolean, SHOULD_RETRY.slice('must be '.length))], got(SHOULD_RETRY)).optional(),
    outages: z.array(outage, got('must be a list of {from, to, kind|status}')).optional(),
  },
  'a mapping',
  `unknown key (expected one of ${DEPLOYMENT_KEYS})`,
);

/** The whole scenario; absent top-level keys take their defaults here. */
export const scenarioSchema = mapping(
  {
    seed: integer(0).default(1),
    strictModels: boolean.default(false),
    apiKeys: z.array(nonEmptyString, got('must be a list of strings')).nullable().default(null),
    defaults: deployment
      .nullable()
      .default({})
      .transform((d) => d ?? {}),
    deployments: z
      .record(
        z.string(),
        deployment.nullable().transform((d) => d ?? {}),
        got('must be a mapping of deployment name to settings'),
      )
      .nullable()
      .default({})
      .transform((d) => d ?? {}),
  },
  'a mapping',
  'unknown key (expected one of seed, strictModels, apiKeys, defaults, deployments)',
);

/** `key.path[0].leaf: problem` lines, one per unknown key (zod reports them together). */
export function scenarioProblems(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => problemLines(issue, []));
}

function problemLines(issue: z.core.$ZodIssue, prefix: PropertyKey[]): string[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${formatPath([...path, key])}: ${issue.message}`);
  if (issue.code === 'invalid_union') {
    // Zod gives up on a union when every branch stopped somewhere. The branch that
    // got past the value's own type (a mapping with a bad entry) says what is wrong.
    const matched = issue.errors.filter((branch) => branch.every((i) => i.path.length > 0));
    if (matched.length === 1) return matched[0]!.flatMap((i) => problemLines(i, path));
  }
  return [`${formatPath(path)}: ${issue.message}`];
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return 'scenario';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

export function sumRates(rates: Partial<Record<FaultKind, number>>): number {
  return Object.values(rates).reduce<number>((a, b) => a + (b ?? 0), 0);
}

export function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}
