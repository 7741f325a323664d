/**
 * Subject and key names shared by every service. One module so that a
 * publisher and its subscribers can never disagree on spelling.
 */

export const SUBJECT_ROOT = 'switchyard';

/** JetStream stream that keeps attempt outcomes for durable (at-least-once) consumers. */
export const OUTCOMES_STREAM = 'SWITCHYARD_OUTCOMES';
export const OUTCOMES_SUBJECTS = `${SUBJECT_ROOT}.outcome.>`;

/** KV buckets holding the current state, so new replicas start from the truth. */
export const KV_BUCKETS = { health: 'sy_health', quota: 'sy_quota' } as const;

/**
 * Heartbeats of the replicas of one service (payload: the replica id), so each
 * knows how many share a limit when the shared state is out of reach.
 */
export const PRESENCE_SUBJECTS = {
  limiter: `${SUBJECT_ROOT}.limiter.replicas`,
  router: `${SUBJECT_ROOT}.router.replicas`,
} as const;

/**
 * JetStream work queue of the jobs service: one subject per priority and
 * tenant (`switchyard.jobq.<priority>.<tenant>`), so workers can take from
 * each tenant's lane in turn. Work-queue retention: a message is gone once acked.
 */
export const JOBS_STREAM = 'SWITCHYARD_JOBS';
export const JOBS_QUEUE_SUBJECTS = `${SUBJECT_ROOT}.jobq.>`;

export type SubjectKind = 'health' | 'quota' | 'outcome' | 'budget' | 'job';

const BAD_TOKEN = /[.*>\s\u0000-\u001f\u007f]/;

/**
 * Validates one subject token: non-empty, no dots (they would add levels),
 * no wildcards and no whitespace. `field` names the argument in the error.
 */
export function assertToken(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`${field} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  const bad = BAD_TOKEN.exec(value);
  if (bad) {
    const what = bad[0] === '.' ? 'a dot' : bad[0] === '*' || bad[0] === '>' ? `the wildcard '${bad[0]}'` : 'whitespace or a control character';
    throw new TypeError(`${field} ${JSON.stringify(value)} is not a valid subject token: it contains ${what}`);
  }
  return value;
}

export const subjects = {
  /** `switchyard.health.<provider>.<deployment>`: breaker state transitions. */
  health: (provider: string, deployment: string) =>
    `${SUBJECT_ROOT}.health.${assertToken('provider', provider)}.${assertToken('deployment', deployment)}`,
  /** `switchyard.quota.<provider>.<deployment>`: limiter exhausted / cooled down / recovered. */
  quota: (provider: string, deployment: string) =>
    `${SUBJECT_ROOT}.quota.${assertToken('provider', provider)}.${assertToken('deployment', deployment)}`,
  /** `switchyard.outcome.<provider>.<deployment>`: one event per attempt (durable stream). */
  outcome: (provider: string, deployment: string) =>
    `${SUBJECT_ROOT}.outcome.${assertToken('provider', provider)}.${assertToken('deployment', deployment)}`,
  /**
   * `switchyard.outcome.batch`: several outcomes in one AttemptOutcomeBatch (same stream).
   * Three tokens, so it never matches a `<provider>.<deployment>` outcome subject.
   */
  outcomeBatch: () => `${SUBJECT_ROOT}.outcome.batch`,
  /** `switchyard.budget.<tenant>`: budget thresholds crossed. */
  budget: (tenant: string) => `${SUBJECT_ROOT}.budget.${assertToken('tenant', tenant)}`,
  /** `switchyard.job.<tenant>.<state>`: job state changes (state in lower case, e.g. `succeeded`). */
  job: (tenant: string, state: string) => `${SUBJECT_ROOT}.job.${assertToken('tenant', tenant)}.${assertToken('state', state)}`,
  /** `switchyard.jobq.<priority>.<tenant>`: a tenant's lane of the jobs work queue (JOBS_STREAM). */
  jobQueue: (priority: string, tenant: string) => `${SUBJECT_ROOT}.jobq.${assertToken('priority', priority)}.${assertToken('tenant', tenant)}`,
  /** `switchyard.<kind>.>`: everything of one kind, for subscribers. */
  all: (kind: SubjectKind) => `${SUBJECT_ROOT}.${kind}.>`,
};

/**
 * KV key for per-deployment state in `sy_health` / `sy_quota`: `<provider>.<deployment>`
 * (dots are hierarchy in KV keys, so watchers can filter by provider).
 */
export function deploymentKey(provider: string, deployment: string): string {
  return `${assertToken('provider', provider)}.${assertToken('deployment', deployment)}`;
}

const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;
const BUCKET = /^[-_a-zA-Z0-9]+$/;

/** KV key rules of JetStream, enforced identically by both bus implementations. */
export function assertKvKey(key: unknown): string {
  if (typeof key !== 'string' || !KV_KEY.test(key) || key.startsWith('.') || key.endsWith('.') || key.includes('..')) {
    throw new TypeError(
      `KV key ${JSON.stringify(key)} is invalid: use letters, digits and - / _ = . (no leading, trailing or double dots)`,
    );
  }
  return key;
}

export function assertBucket(bucket: unknown): string {
  if (typeof bucket !== 'string' || !BUCKET.test(bucket)) {
    throw new TypeError(`KV bucket name ${JSON.stringify(bucket)} is invalid: use letters, digits, - and _`);
  }
  return bucket;
}

/** Validates a subject used to publish (no wildcards, no empty tokens). */
export function assertPublishSubject(subject: unknown): string {
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new TypeError(`subject must be a non-empty string, got ${JSON.stringify(subject)}`);
  }
  for (const token of subject.split('.')) {
    if (token === '' || /[*>\s]/.test(token)) {
      throw new TypeError(`subject ${JSON.stringify(subject)} is not publishable: empty token, wildcard or whitespace`);
    }
  }
  return subject;
}

/** Validates a subscription subject (wildcards allowed: `*` a whole token, `>` only last). */
export function assertFilterSubject(subject: unknown): string {
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new TypeError(`subject filter must be a non-empty string, got ${JSON.stringify(subject)}`);
  }
  const tokens = subject.split('.');
  tokens.forEach((token, i) => {
    const ok =
      token === '*' || (token === '>' && i === tokens.length - 1) || (token !== '' && !/[*>\s]/.test(token));
    if (!ok) throw new TypeError(`subject filter ${JSON.stringify(subject)} is invalid at token ${i + 1} (${JSON.stringify(token)})`);
  });
  return subject;
}

/** NATS subject matching (`*` = one token, `>` = one or more trailing tokens). */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}
