import { createHash, randomUUID } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  AttemptOutcomeSchema,
  AttemptSchema,
  CacheStatus,
  CircuitState,
  CompleteResponseSchema,
  ErrorClass as ErrorClassEnum,
  FinishReason,
  KeyKind,
  LimitKind,
  LookupStatus,
  type Attempt,
  type CompleteResponse,
  type DeploymentRef,
} from '@switchyard/contracts';
import { AppError, status, type Metadata } from '@switchyard/grpc';
import {
  estimateCostMicros,
  estimateRequestTokens,
  rateLimitHeadersOf,
  type Classification,
  type RateLimitSnapshot,
  type FinishReason as NeutralFinishReason,
  type RequestTokenEstimate,
  type Usage,
} from '@switchyard/providers';
import { orderCandidates, planCandidates, UNKNOWN_VIEW, type Candidate, type CandidatePlan, type DeploymentView } from '../domain/candidates';
import { expectedLatency } from '../domain/latency-estimate';
import { classEffects } from '../domain/outcome-action';
import type { Admission, AttemptEvent, AttemptPorts, AttemptRecord, LoopOptions } from '../domain/run-attempts';
import { resolveRoute, validateCall, type CallRequest, type ValidatedCall } from '../domain/validate-request';
import type { KeyOwner, RouterContext } from '../router-context';
import { authenticate, authorizeRoute } from './auth';

/** A request that passed auth and validation, with everything the fan-out and the attempt loop need. */
export interface PreparedCall {
  requestId: string;
  owner: KeyOwner;
  call: ValidatedCall;
  plan: CandidatePlan;
  /** Estimated prompt tokens per candidate (providers count differently). */
  inputTokens: Map<string, number>;
  /** Worst-case cost at the most expensive usable candidate, micro-USD. */
  reserveMicros: number;
  /** Empty when the call neither reads nor writes the cache (it hashes the whole prompt). */
  cacheKey: string;
  /** Caller deadline as an instant; Infinity when none. */
  deadlineAt: number;
}

/** Outcome of the cache Lookup in the fan-out. */
export type CacheLookup =
  | { kind: 'bypass' }
  | { kind: 'unavailable' }
  | { kind: 'miss' }
  | { kind: 'hit'; response: CompleteResponse; ageMs: number }
  | { kind: 'stale'; response: CompleteResponse; ageMs: number };

/** Outcome of the budget Reserve in the fan-out. */
export type BudgetHold =
  | { kind: 'granted'; reservationId: string; note?: string }
  /** Nothing held: the budget service was unreachable and the tenant has no hard cap (fail open). */
  | { kind: 'unrecorded'; note: string }
  | { kind: 'denied'; error: AppError };

export interface FanOut {
  cache: CacheLookup;
  budget: BudgetHold;
  firstAdmission?: Admission;
}

const ERROR_DOMAIN = 'switchyard.router';

function errMessage(err: unknown): string {
  const e = err as { code?: number; details?: string; message?: string };
  if (typeof e?.code === 'number' && e.details !== undefined) return `${status[e.code] ?? e.code}: ${e.details}`;
  return e?.message ?? String(err);
}

/** Canonical cache key: the route plus a hash of exactly the fields that change the answer. */
export function cacheKeyFor(call: ValidatedCall): string {
  const { messages, maxTokens, temperature, topP, stop } = call.chat;
  const canonical = JSON.stringify({ messages: messages.map((m) => [m.role, m.content]), maxTokens, temperature: temperature ?? null, topP: topP ?? null, stop: stop ?? [] });
  return `${call.routeName}:${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
}

/**
 * Per-hop deadline of a peer call: the configured one, shortened so a slow
 * peer cannot eat into the caller's own deadline (a little is kept back for
 * answering). Never below 1 ms: an expired hop fails at once into its fallback.
 * `waitMs` is time the peer was asked to wait on purpose (a limiter queue).
 */
export function hopOptions(ctx: RouterContext, p: PreparedCall, waitMs = 0): { deadlineMs: number } {
  const left = p.deadlineAt - ctx.clock.now() - HOP_RESERVE_MS;
  // A queued wait already keeps its margins (run-attempts admissionWaitMs):
  // its hop gets the wait plus a little, not a whole peer deadline more, so a
  // limiter slow to answer cannot spend the time the caller's answer needs.
  const allowed = waitMs > 0 ? waitMs + WAIT_HOP_SLACK_MS : ctx.peerDeadlineMs;
  return { deadlineMs: Math.max(1, Math.min(allowed, left)) };
}

/** Beyond a queued wait, how long the limiter's answer may take to arrive. */
const WAIT_HOP_SLACK_MS = 50;

/** Time kept back from a peer hop for the router to still answer before the caller's deadline. */
const HOP_RESERVE_MS = 10;

/** Observed latency of one attempt: cluster-wide p50 from the health replica, else this replica's EWMA. */
export function expectedAttemptMs(ctx: RouterContext, c: Candidate, streaming: boolean): number {
  if (streaming) return ctx.latency.get(`stream:${c.name}`);
  return expectedLatency(ctx.health.get(c.name)?.p50LatencyMs, ctx.latency.get(c.name));
}

/** The local circuit's verdict, only while the shared health view is out of reach (NATS and breaker both down). */
function localOpenUntil(ctx: RouterContext, name: string): number | undefined {
  return ctx.outcomes.sharedHealthReachable() ? undefined : ctx.localBreaker.openUntil(name);
}

function viewFrom(ctx: RouterContext, name: string): DeploymentView {
  const h = ctx.health.get(name);
  const q = ctx.quota.get(name);
  const view: DeploymentView = { ...UNKNOWN_VIEW };
  if (h) {
    view.circuit = h.circuit;
    view.openUntil = h.openUntil;
    view.slow = h.slow;
    view.p50LatencyMs = h.p50LatencyMs;
  }
  const localUntil = localOpenUntil(ctx, name);
  if (localUntil !== undefined) {
    view.circuit = 'open';
    view.openUntil = localUntil;
  }
  if (q) {
    view.unavailable = q.unavailable;
    if (q.cooldownUntil >= q.exhaustedUntil && q.cooldownUntil > 0) {
      view.blockedUntil = q.cooldownUntil;
      view.blockedReason = 'cooling down after an upstream 429';
    } else if (q.exhaustedUntil > 0) {
      view.blockedUntil = q.exhaustedUntil;
      view.blockedReason = `${q.exhaustedLimit ?? 'quota'} exhausted`;
    }
  }
  return view;
}

/**
 * Steps 1-2 of DESIGN.md "The life of one call": authenticate, resolve and
 * authorise the route, validate, estimate, plan candidates from the local
 * replicas. Throws AppError, or a FieldError for bad input (INVALID_ARGUMENT at
 * the boundary); nothing has been reserved yet, so bad input is
 * never charged.
 */
export function prepareCall(ctx: RouterContext, req: CallRequest, metadata: Metadata, deadline: Date | undefined): PreparedCall {
  const owner = authenticate(ctx, metadata);
  const route = resolveRoute(ctx.gateway, req.route);
  authorizeRoute(owner, req.route);
  const call = validateCall(req, route, { ...ctx.gateway.defaults.requestLimits, defaultMaxTokens: ctx.defaultMaxTokens });
  const ordered = orderCandidates(route, ctx.gateway.deployments, ctx.rng);
  const now = ctx.clock.now();
  const plan = planCandidates(ordered, (name) => viewFrom(ctx, name), now);
  const inputTokens = new Map<string, number>();
  // The estimate depends only on the provider kind, and tokenizing the prompt
  // costs ~55 µs per KiB: once per kind, not once per candidate.
  const byProvider = new Map<string, RequestTokenEstimate>();
  let reserveMicros = 0;
  for (const c of ordered) {
    const provider = c.deployment.provider;
    let estimate = byProvider.get(provider);
    if (!estimate) byProvider.set(provider, (estimate = estimateRequestTokens(call.chat, provider)));
    inputTokens.set(c.name, estimate.inputTokens);
    if (plan.usable.includes(c)) {
      const price = { inputPerMillion: c.deployment.price.inputPerMillionUsd, outputPerMillion: c.deployment.price.outputPerMillionUsd };
      reserveMicros = Math.max(reserveMicros, estimateCostMicros({ inputTokens: estimate.inputTokens, outputTokens: estimate.outputTokens }, price));
    }
  }
  return {
    requestId: randomUUID(),
    owner,
    call,
    plan,
    inputTokens,
    reserveMicros,
    cacheKey: call.cache.read || call.cache.write ? cacheKeyFor(call) : '',
    deadlineAt: deadline ? deadline.getTime() : Number.POSITIVE_INFINITY,
  };
}

export function deploymentRef(c: Candidate): { provider: string; deployment: string; model: string } {
  return { provider: c.deployment.provider, deployment: c.name, model: c.deployment.model };
}

// ---------------------------------------------------------------- fan-out

async function lookupCache(ctx: RouterContext, p: PreparedCall): Promise<CacheLookup> {
  if (!p.call.cache.read) return { kind: 'bypass' };
  try {
    const res = await ctx.peers.cache.lookup({ tenant: p.owner.tenantId, key: p.cacheKey, allowStale: p.call.cache.staleOnError }, hopOptions(ctx, p));
    if (res.status !== LookupStatus.HIT && res.status !== LookupStatus.STALE) return { kind: 'miss' };
    let response: CompleteResponse;
    try {
      response = fromBinary(CompleteResponseSchema, res.response);
    } catch (err) {
      ctx.logger.warn({ request_id: p.requestId, err: { message: (err as Error).message } }, 'undecodable cache entry treated as a miss');
      return { kind: 'miss' };
    }
    return { kind: res.status === LookupStatus.HIT ? 'hit' : 'stale', response, ageMs: res.ageMs };
  } catch (err) {
    ctx.logger.warn({ request_id: p.requestId, peer: 'cache', err: { message: errMessage(err) } }, 'cache unreachable; bypassing');
    return { kind: 'unavailable' };
  }
}

function hasHardCap(owner: KeyOwner): boolean {
  return owner.tenant.budgets.some((b) => b.hard);
}

async function reserveBudget(ctx: RouterContext, p: PreparedCall): Promise<BudgetHold> {
  try {
    const res = await ctx.peers.budget.reserve({
      tenant: p.owner.tenantId,
      feature: p.call.feature,
      apiKeyId: p.owner.apiKeyId,
      amountMicros: BigInt(p.reserveMicros),
      requestId: p.requestId,
    }, hopOptions(ctx, p));
    if (res.granted) {
      return res.failOpen
        ? { kind: 'granted', reservationId: res.reservationId, note: 'budget store unavailable: spend not recorded centrally' }
        : { kind: 'granted', reservationId: res.reservationId };
    }
    if (res.failClosed) {
      return {
        kind: 'denied',
        error: new AppError(status.UNAVAILABLE, 'budget service cannot reach its store and the tenant has hard caps (fail closed)', {
          retryDelayMs: 1000,
          errorInfo: { reason: 'BUDGET_UNAVAILABLE', domain: ERROR_DOMAIN, metadata: { tenant: p.owner.tenantId, request_id: p.requestId } },
        }),
      };
    }
    const cap = res.deniedCap;
    const period = cap ? ['unspecified', 'hour', 'day', 'month'][cap.period] ?? 'period' : 'period';
    const scope = cap ? ['cap', 'tenant', 'api key', 'feature'][cap.scope] ?? 'cap' : 'cap';
    const subject = cap ? `${scope}:${cap.subject}` : `tenant:${p.owner.tenantId}`;
    const description =
      `hard ${period} budget of ${res.limitMicros} micro-USD: spent ${res.spentMicros} + reserved ${res.reservedMicros} ` +
      `+ this call's worst case ${p.reserveMicros} would exceed it`;
    const retryAfterMs = res.resetsAtUnixMs > 0n ? Math.max(0, Number(res.resetsAtUnixMs) - ctx.clock.now()) : undefined;
    return {
      kind: 'denied',
      error: new AppError(status.RESOURCE_EXHAUSTED, `budget exceeded: ${subject}: ${description}`, {
        quotaFailure: [{ subject, description }],
        ...(retryAfterMs !== undefined ? { retryDelayMs: retryAfterMs } : {}),
        errorInfo: {
          reason: 'BUDGET_EXCEEDED',
          domain: ERROR_DOMAIN,
          metadata: {
            tenant: p.owner.tenantId,
            request_id: p.requestId,
            limit_micros: String(res.limitMicros),
            spent_micros: String(res.spentMicros),
            reserved_micros: String(res.reservedMicros),
            requested_micros: String(p.reserveMicros),
          },
        },
      }),
    };
  } catch (err) {
    // DESIGN.md "When our own dependencies fail": hard caps fail closed, no caps fail open.
    if (hasHardCap(p.owner)) {
      return {
        kind: 'denied',
        error: new AppError(status.UNAVAILABLE, `budget service unavailable (${errMessage(err)}); tenant "${p.owner.tenantId}" has hard caps, so the call is refused`, {
          retryDelayMs: 1000,
          errorInfo: { reason: 'BUDGET_UNAVAILABLE', domain: ERROR_DOMAIN, metadata: { tenant: p.owner.tenantId, request_id: p.requestId } },
        }),
      };
    }
    ctx.logger.warn({ request_id: p.requestId, peer: 'budget', err: { message: errMessage(err) } }, 'budget unreachable; tenant has no hard caps, proceeding');
    return { kind: 'unrecorded', note: 'budget service unavailable: spend not recorded' };
  }
}

const LIMIT_NAMES: Record<number, string> = {
  [LimitKind.RPM]: 'RPM',
  [LimitKind.TPM]: 'TPM',
  [LimitKind.TPD]: 'TPD',
  [LimitKind.CONCURRENCY]: 'concurrency',
  [LimitKind.COOLDOWN]: 'cooldown',
  [LimitKind.UNAVAILABLE]: 'unavailable',
};

/** A request other than the probe may go only to a deployment the health replica shows closed (or does not know). */
export function dispatchAllowed(ctx: RouterContext, c: Candidate): boolean {
  if (localOpenUntil(ctx, c.name) !== undefined) return false;
  const circuit = ctx.health.get(c.name)?.circuit;
  return circuit === undefined || circuit === 'closed' || circuit === 'unknown';
}

/** A half-open deployment (or an open one past its open_until) may only be sent the cluster-wide probe. */
function needsProbe(ctx: RouterContext, c: Candidate): boolean {
  const h = ctx.health.get(c.name);
  if (!h) return false;
  return h.circuit === 'half-open' || (h.circuit === 'open' && h.openUntil > 0 && h.openUntil <= ctx.clock.now());
}

/**
 * DESIGN step 4: dispatch to a HALF_OPEN deployment only after winning the
 * breaker's AcquireProbe (holder = this replica), so the whole cluster sends it
 * one probe, not one per replica. Lost → skip it. Breaker unreachable → go
 * ahead (its outcome still reaches the breaker), noted on the attempt.
 */
async function acquireProbe(ctx: RouterContext, p: PreparedCall, c: Candidate): Promise<{ ok: true; note?: string } | { ok: false; denial: Admission }> {
  try {
    const res = await ctx.peers.breaker.acquireProbe(
      { deployment: c.name, holderId: ctx.replicaId, ttlMs: Math.min(c.deployment.timeoutMs + PROBE_TTL_SLACK_MS, 0xffffffff) },
      hopOptions(ctx, p),
    );
    if (res.granted) return { ok: true, note: 'half-open probe' };
    const expires = Number(res.expiresAtUnixMs);
    return {
      ok: false,
      denial: {
        granted: false,
        source: 'breaker',
        retryAfterMs: expires > 0 ? Math.max(0, expires - ctx.clock.now()) : 0,
        reason: res.holderId ? `half-open, probe held by ${res.holderId}` : `half-open, probe not granted (state ${CircuitState[res.state] ?? res.state})`,
      },
    };
  } catch (err) {
    ctx.logger.warn({ request_id: p.requestId, peer: 'breaker', deployment: c.name, err: { message: errMessage(err) } }, 'breaker unreachable for AcquireProbe; probing anyway');
    return { ok: true, note: 'breaker unavailable: unpermitted probe' };
  }
}

/** The probe permit outlives the attempt by this much, so a slow probe is not raced by another replica's. */
const PROBE_TTL_SLACK_MS = 1000;

/**
 * Admission of one attempt on `c`: the half-open probe permit when the
 * deployment needs one, then limiter Acquire on the deployment key and the
 * tenant key, all-or-nothing. Never throws.
 */
export async function admit(ctx: RouterContext, p: PreparedCall, c: Candidate, maxWaitMs = 0, signal?: AbortSignal): Promise<Admission> {
  if (!needsProbe(ctx, c)) return acquireLimiter(ctx, p, c, maxWaitMs, signal);
  // The breaker lets the holder re-acquire its own permit, so this replica
  // also keeps its probes to one in flight per deployment.
  if (ctx.probesInFlight.has(c.name)) {
    return { granted: false, source: 'breaker', retryAfterMs: 0, reason: 'half-open, this replica already has the probe in flight' };
  }
  ctx.probesInFlight.add(c.name);
  const probe = await acquireProbe(ctx, p, c);
  if (!probe.ok) {
    ctx.probesInFlight.delete(c.name);
    return probe.denial;
  }
  const admission = await acquireLimiter(ctx, p, c, maxWaitMs, signal);
  if (!admission.granted) {
    ctx.probesInFlight.delete(c.name);
    return admission;
  }
  return { ...admission, probe: c.name, note: [probe.note, admission.note].filter(Boolean).join('; ') };
}

/** Tokens an attempt on `c` reserves at Acquire: the prompt estimate plus max_tokens. */
function reservedTokens(p: PreparedCall, c: Candidate): number {
  return (p.inputTokens.get(c.name) ?? 0) + p.call.chat.maxTokens;
}

/**
 * Tokens an attempt that reached the provider counts against the deployment's
 * TPM, as the provider itself counts them. OpenAI and Azure charge prompt +
 * max_tokens when they admit a request and give nothing back for a short
 * answer (nor for a failed one), so settling to the actual usage would let our
 * view drift below theirs and earn 429s; only an overrun is added. Anthropic
 * counts input and output tokens as used, so its reservation settles to actual.
 */
function countedTokens(p: PreparedCall, c: Candidate, usage: Usage | undefined): number {
  const actual = usage ? usage.inputTokens + usage.outputTokens : 0;
  return c.deployment.provider === 'anthropic' ? actual : Math.max(actual, reservedTokens(p, c));
}

/**
 * Limiter Acquire for one attempt on `c`: the deployment key and the tenant
 * key, all-or-nothing. With `maxWaitMs` the limiter holds the call in its fair
 * queue up to then, so the hop's deadline grows by the wait. Never throws.
 */
async function acquireLimiter(ctx: RouterContext, p: PreparedCall, c: Candidate, maxWaitMs: number, signal?: AbortSignal): Promise<Admission> {
  const tokens = reservedTokens(p, c);
  try {
    const hop = hopOptions(ctx, p, maxWaitMs);
    const res = await ctx.peers.limiter.acquire({
      keys: [
        { kind: KeyKind.DEPLOYMENT, id: c.name },
        { kind: KeyKind.TENANT, id: p.owner.tenantId },
      ],
      requests: 1,
      tokens,
      maxWaitMs,
    }, signal ? { ...hop, signal } : hop);
    if (res.granted) {
      return res.localFallback ? { granted: true, reservationId: res.reservationId, note: 'limiter local fallback' } : { granted: true, reservationId: res.reservationId };
    }
    const key = res.blockedKey;
    const tenantBlocked = key?.kind === KeyKind.TENANT;
    const who = key ? `${tenantBlocked ? 'tenant' : 'deployment'} ${key.id}` : c.name;
    return {
      granted: false,
      retryAfterMs: res.retryAfterMs,
      reason: `${who} ${LIMIT_NAMES[res.blockedLimit] ?? 'limit'} exhausted`,
      final: tenantBlocked,
    };
  } catch (err) {
    // The caller left while queued: not a limiter failure, and nothing to admit.
    if (signal?.aborted) return { granted: false, retryAfterMs: 0, reason: 'caller cancelled while waiting for quota', final: true };
    // A wait in the limiter's queue that outlived its hop is the caller's time
    // running out while short of quota, not a limiter outage: admitting it
    // unmetered would send exactly the request the queue was holding back.
    if (maxWaitMs > 0 && (err as { code?: number }).code === status.DEADLINE_EXCEEDED) {
      return { granted: false, retryAfterMs: 0, reason: `${c.name} quota: still queued when the wait ran out`, final: true };
    }
    // A request the limiter refuses as invalid is our misconfiguration (e.g.
    // ADMISSION_MAX_WAIT_MS above LIMITER_MAX_WAIT_MS), not an outage: admitting
    // it unmetered would turn a config slip into 429s upstream.
    if ((err as { code?: number }).code === status.INVALID_ARGUMENT) {
      ctx.logger.error({ request_id: p.requestId, peer: 'limiter', deployment: c.name, err: { message: errMessage(err) } }, 'limiter rejected the acquire as invalid');
      return { granted: false, retryAfterMs: 0, reason: `limiter rejected the acquire (${errMessage(err)})`, final: true };
    }
    ctx.logger.warn({ request_id: p.requestId, peer: 'limiter', deployment: c.name, err: { message: errMessage(err) } }, 'limiter unreachable; proceeding');
    return { granted: true, note: 'limiter unavailable' };
  }
}

/** Step 3: cache Lookup, budget Reserve and the first limiter Acquire, in parallel, each bounded by the per-hop deadline. */
export async function fanOut(ctx: RouterContext, p: PreparedCall): Promise<FanOut> {
  const first = p.plan.usable[0];
  const nothingToTry = first === undefined;
  const [cache, budget, firstAdmission] = await Promise.all([
    lookupCache(ctx, p),
    nothingToTry ? Promise.resolve<BudgetHold>({ kind: 'unrecorded', note: '' }) : reserveBudget(ctx, p),
    nothingToTry ? Promise.resolve(undefined) : admit(ctx, p, first),
  ]);
  return { cache, budget, firstAdmission };
}

// ---------------------------------------------------------------- the attempt loop's wiring

/** Ports of the attempt loop that do not depend on what an attempt returns: admission, health, latency. */
export type SharedPorts = Pick<AttemptPorts<unknown>, 'clock' | 'rng' | 'sleep' | 'admit' | 'unused' | 'mayDispatch' | 'knownHealthy' | 'expectedLatencyMs'>;

/** The same for Complete and StreamComplete; `streaming` picks the latency that decides whether an attempt fits. */
export function sharedPorts(ctx: RouterContext, p: PreparedCall, signal: AbortSignal, streaming: boolean): SharedPorts {
  return {
    clock: ctx.clock,
    rng: ctx.rng,
    sleep: ctx.sleep,
    admit: (c, maxWaitMs) => admit(ctx, p, c, maxWaitMs, signal),
    unused: (a) => settleAdmission(ctx, p, a, 'cancelled'),
    mayDispatch: (c) => dispatchAllowed(ctx, c),
    knownHealthy: (c) => !ctx.localBreaker.failing(c.name),
    expectedLatencyMs: (c) => expectedAttemptMs(ctx, c, streaming),
  };
}

/** Options of the attempt loop for one call: retry policy, deadline, budget, and the admission the fan-out already won. */
export function loopOptions(ctx: RouterContext, p: PreparedCall, fan: FanOut, signal: AbortSignal): LoopOptions {
  return {
    retry: ctx.gateway.defaults.retry,
    deadlineAt: p.deadlineAt,
    fallbackOnContentFilter: p.call.route.fallbackOnContentFilter,
    signal,
    retryBudget: ctx.retryBudget,
    maxAdmissionWaitMs: ctx.admissionMaxWaitMs,
    ...(fan.firstAdmission ? { firstAdmission: fan.firstAdmission } : {}),
  };
}

// ---------------------------------------------------------------- accounting (off the response path)

export function settleAdmission(ctx: RouterContext, p: PreparedCall, admission: Admission | undefined, usage: { tokens: number } | 'cancelled'): void {
  if (admission?.granted && admission.probe) ctx.probesInFlight.delete(admission.probe);
  if (!admission?.granted || !admission.reservationId) return;
  const reservationId = admission.reservationId;
  ctx.tasks.run('limiter settle', { request_id: p.requestId, reservation_id: reservationId }, () =>
    ctx.settleRetry.run(() =>
      usage === 'cancelled' ? ctx.peers.limiter.settle({ reservationId, cancelled: true }) : ctx.peers.limiter.settle({ reservationId, actualTokens: usage.tokens }),
    ),
  );
}

export function releaseBudget(ctx: RouterContext, p: PreparedCall, hold: BudgetHold): void {
  if (hold.kind !== 'granted' || !hold.reservationId) return;
  const reservationId = hold.reservationId;
  ctx.tasks.run('budget release', { request_id: p.requestId, reservation_id: reservationId }, () =>
    ctx.settleRetry.run(() => ctx.peers.budget.release({ reservationId })),
  );
}

export function commitBudget(ctx: RouterContext, p: PreparedCall, hold: BudgetHold, actualMicros: number): void {
  if (hold.kind !== 'granted' || !hold.reservationId) return;
  const reservationId = hold.reservationId;
  ctx.tasks.run('budget commit', { request_id: p.requestId, reservation_id: reservationId, actual_micros: actualMicros }, () =>
    ctx.settleRetry.run(() => ctx.peers.budget.commit({ reservationId, actualMicros: BigInt(actualMicros) })),
  );
}

export function storeInCache(ctx: RouterContext, p: PreparedCall, response: CompleteResponse): void {
  if (!p.call.cache.write) return;
  const stored = create(CompleteResponseSchema, { ...response, attempts: [], requestId: '', cacheStatus: CacheStatus.UNSPECIFIED, degraded: false, degradedReason: '', cacheAgeMs: 0 });
  const bytes = toBinary(CompleteResponseSchema, stored);
  const { ttlMs, staleTtlMs } = ctx.gateway.defaults.cache;
  ctx.tasks.run('cache store', { request_id: p.requestId }, () =>
    ctx.peers.cache.store({ tenant: p.owner.tenantId, key: p.cacheKey, response: bytes, ttlMs, staleTtlMs }),
  );
}

export function costMicros(c: Candidate, usage: Usage): number {
  return estimateCostMicros(usage, { inputPerMillion: c.deployment.price.inputPerMillionUsd, outputPerMillion: c.deployment.price.outputPerMillionUsd });
}

/**
 * What the provider said about its limits reaches the limiter (Observe): every
 * 429 / insufficient_quota with its retry-after and rate-limit headers, and the
 * headers of successful answers when they carry news (see rate-limit-reports).
 */
function observeRateLimits(ctx: RouterContext, p: PreparedCall, candidate: Candidate, classification: Classification | undefined, successLimits: RateLimitSnapshot | undefined): void {
  let headers: Record<string, string>;
  if (classification) {
    if (!classEffects(classification.errorClass).observeLimiter) return;
    headers = classification.rateLimit ? rateLimitHeadersOf(classification.rateLimit) : {};
    if (classification.retryAfterMs !== undefined) headers['retry-after-ms'] = String(classification.retryAfterMs);
  } else {
    if (!ctx.rateLimitReports.shouldReport(candidate.name, successLimits, ctx.clock.now())) return;
    headers = rateLimitHeadersOf(successLimits!);
  }
  const observedAtUnixMs = BigInt(ctx.clock.now());
  ctx.tasks.run('limiter observe', { request_id: p.requestId, deployment: candidate.name }, () =>
    ctx.peers.limiter.observe({
      deployment: deploymentRef(candidate),
      observedAtUnixMs,
      httpStatus: classification ? (classification.status ?? 0) : 200,
      headers,
      errorClass: classification ? ErrorClassEnum[classification.errorClass] : ErrorClassEnum.UNSPECIFIED,
    }),
  );
}

/**
 * After every upstream attempt: settle its limiter reservation (actual tokens
 * on success, `usage` for a partial stream, 0 otherwise), tell the limiter about
 * rate limits / exhausted quota, publish the outcome, log one line. All of it
 * off the response path.
 */
export function recordAttempt<T>(
  ctx: RouterContext,
  p: PreparedCall,
  event: AttemptEvent<T>,
  extra: { usage?: Usage; streaming?: boolean; timeToFirstTokenMs?: number; rateLimit?: RateLimitSnapshot } = {},
): void {
  const { candidate, admission, record, classification } = event;
  if (event.cancelled) {
    settleAdmission(ctx, p, admission, 'cancelled');
    ctx.logger.info({ event: 'attempt', request_id: p.requestId, deployment: candidate.name, attempt: record.attempt, cancelled: true }, 'attempt cancelled');
    return;
  }
  const usage = extra.usage;
  settleAdmission(ctx, p, admission, { tokens: countedTokens(p, candidate, usage) });
  observeRateLimits(ctx, p, candidate, classification, extra.rateLimit);
  const outcome = create(AttemptOutcomeSchema, {
    eventId: randomUUID(),
    requestId: p.requestId,
    route: p.call.routeName,
    tenant: p.owner.tenantId,
    feature: p.call.feature,
    deployment: deploymentRef(candidate),
    errorClass: record.errorClass ? ErrorClassEnum[record.errorClass] : ErrorClassEnum.UNSPECIFIED,
    httpStatus: record.httpStatus ?? (record.errorClass ? 0 : 200),
    latencyMs: record.latencyMs,
    upstreamRequestId: record.upstreamRequestId ?? '',
    timeUnixMs: BigInt(ctx.clock.now()),
    attempt: record.attempt,
    streaming: extra.streaming ?? false,
    timeToFirstTokenMs: extra.timeToFirstTokenMs ?? 0,
    ...(usage ? { usage } : {}),
  });
  ctx.outcomes.publish(outcome);
  ctx.logger.info(
    {
      event: 'attempt',
      request_id: p.requestId,
      tenant: p.owner.tenantId,
      feature: p.call.feature || undefined,
      route: p.call.routeName,
      provider: candidate.deployment.provider,
      deployment: candidate.name,
      model: candidate.deployment.model,
      attempt: record.attempt,
      status: record.httpStatus,
      error_class: record.errorClass,
      latency_ms: record.latencyMs,
      upstream_request_id: record.upstreamRequestId,
      prompt_tokens: usage?.inputTokens,
      completion_tokens: usage?.outputTokens,
      estimated_cost_micros: usage ? costMicros(candidate, usage) : undefined,
      note: record.note,
    },
    'provider attempt',
  );
}

// ---------------------------------------------------------------- response shapes

export function toAttemptProto(r: AttemptRecord): Attempt {
  return create(AttemptSchema, {
    deployment: { provider: r.provider, deployment: r.deployment, model: r.model },
    errorClass: r.errorClass ? ErrorClassEnum[r.errorClass] : ErrorClassEnum.UNSPECIFIED,
    latencyMs: r.latencyMs,
    upstreamRequestId: r.upstreamRequestId ?? '',
    retryAfterMs: r.retryAfterMs ?? 0,
    httpStatus: r.httpStatus ?? 0,
    note: r.note ?? '',
  });
}

export function finishReasonProto(r: NeutralFinishReason): FinishReason {
  switch (r) {
    case 'stop':
      return FinishReason.STOP;
    case 'length':
      return FinishReason.LENGTH;
    case 'content_filter':
      return FinishReason.CONTENT_FILTER;
    default:
      return FinishReason.STOP;
  }
}

export function cacheStatusFor(lookup: CacheLookup): CacheStatus {
  switch (lookup.kind) {
    case 'bypass':
      return CacheStatus.BYPASS;
    case 'unavailable':
      return CacheStatus.UNAVAILABLE;
    default:
      return CacheStatus.MISS;
  }
}

/** Notes that make an answer "degraded" (local fallbacks of our own dependencies). */
export function degradedNotes(f: FanOut, attempts: readonly AttemptRecord[]): string[] {
  const notes: string[] = [];
  if (f.budget.kind === 'unrecorded' && f.budget.note) notes.push(f.budget.note);
  if (f.budget.kind === 'granted' && f.budget.note) notes.push(f.budget.note);
  if (f.cache.kind === 'unavailable') notes.push('cache unavailable: bypassed');
  const limiterNotes = new Set(attempts.map((a) => a.note).filter((n): n is string => !!n && (n.includes('limiter unavailable') || n.includes('limiter local fallback'))));
  for (const n of limiterNotes) notes.push(n.includes('limiter unavailable') ? 'limiter unavailable' : 'limiter local fallback');
  return [...new Set(notes)];
}

/** A cached answer re-dressed for this call (HIT or STALE). */
export function fromCache(p: PreparedCall, lookup: Extract<CacheLookup, { kind: 'hit' | 'stale' }>, attempts: Attempt[], degradedReason?: string): CompleteResponse {
  return create(CompleteResponseSchema, {
    ...lookup.response,
    costMicros: 0n,
    attempts,
    cacheStatus: lookup.kind === 'hit' ? CacheStatus.HIT : CacheStatus.STALE,
    degraded: degradedReason !== undefined,
    degradedReason: degradedReason ?? '',
    requestId: p.requestId,
    cacheAgeMs: lookup.ageMs,
  });
}

export function servedBy(c: Candidate): DeploymentRef {
  return create(CompleteResponseSchema, { servedBy: deploymentRef(c) }).servedBy!;
}
