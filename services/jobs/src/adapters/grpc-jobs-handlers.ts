import { clone, create } from '@bufbuild/protobuf';
import { hashApiKey, type SwitchyardConfig } from '@switchyard/config';
import { CompleteRequestSchema, JobSchema, JobState, Priority, type Job, type JobsService, type QueueDepth } from '@switchyard/contracts';
import { AppError, invalidArgument, notFound, resourceExhausted, status, unauthenticated, unavailable, type ImplementationOf, type Metadata } from '@switchyard/grpc';
import { assertPublishSubject, SUBJECT_ROOT } from '@switchyard/nats';
import type { Clock } from '@switchyard/util';
import { JOB_ID_PATTERN, newJobId } from '../domain/job-id';
import type { LanePriority, LaneSet } from '../domain/lanes';
import { isFinal, statusOf, summary, type JobTransitions } from '../job-transitions';
import type { JobWorker } from '../worker';
import { JobConflictError, type JobStore, type VersionedJob } from './job-store';
import type { JobsMetrics } from './jobs-metrics';
import type { KeySeal } from './key-seal';
import type { WorkQueue } from './work-queue';

export interface JobsHandlerDeps {
  config: SwitchyardConfig;
  store: JobStore;
  queue: WorkQueue;
  lanes: LaneSet;
  transitions: JobTransitions;
  worker: JobWorker;
  seal: KeySeal;
  clock: Clock;
  options: { defaultExpiryMs: number; maxExpiryMs: number; maxQueuedPerTenant: number; maxQueueAgeMs: number; retryDelayMs: number; pollMs: number };
  metrics?: Pick<JobsMetrics, 'rejected'>;
}

const MAX_IDEMPOTENCY_KEY = 128;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

function first(metadata: Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  if (v === undefined) return undefined;
  const s = (typeof v === 'string' ? v : v.toString('utf8')).trim();
  return s.length > 0 ? s : undefined;
}

/** Same credentials as the router: metadata x-api-key, or authorization: Bearer <key>. */
function apiKeyFrom(metadata: Metadata): string | undefined {
  const direct = first(metadata, 'x-api-key');
  if (direct) return direct;
  const auth = first(metadata, 'authorization');
  return (auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null)?.[1];
}

function lanePriority(priority: Priority): LanePriority {
  return priority === Priority.INTERACTIVE ? 'interactive' : 'batch';
}

/** The five RPCs. Every one authenticates the caller and sees only its tenant's jobs. */
export function createJobsHandlers(deps: JobsHandlerDeps): ImplementationOf<typeof JobsService> {
  const { store, lanes, clock, options } = deps;
  const tenantByKeyHash = new Map<string, string>();
  for (const [tenant, t] of Object.entries(deps.config.tenants)) for (const key of t.apiKeys) tenantByKeyHash.set(key.sha256, tenant);

  const authenticate = (metadata: Metadata): { tenant: string; apiKey: string } => {
    const apiKey = apiKeyFrom(metadata);
    if (!apiKey) throw unauthenticated('missing API key (metadata x-api-key)');
    const tenant = tenantByKeyHash.get(hashApiKey(apiKey));
    if (!tenant) throw unauthenticated('unknown API key');
    return { tenant, apiKey };
  };

  const depth = (tenant: string): QueueDepth => {
    const d = lanes.depth(tenant);
    return { $typeName: 'switchyard.jobs.v1.QueueDepth', interactive: BigInt(d.interactive), batch: BigInt(d.batch), tenantQueued: BigInt(d.tenant) };
  };

  /** The job as a caller sees it: with a fresh position estimate while it is queued. */
  const view = (job: Job): Job => {
    if (job.state !== JobState.QUEUED) return job;
    const out = clone(JobSchema, job);
    out.positionEstimate = BigInt(lanes.positionEstimate(lanePriority(job.priority), job.tenant));
    return out;
  };

  const load = async (tenant: string, jobId: string): Promise<VersionedJob> => {
    if (!JOB_ID_PATTERN.test(jobId)) throw invalidArgument('job_id', `must be a job id as returned by Submit, got ${JSON.stringify(jobId.slice(0, 64))}`);
    const found = await store.get(tenant, jobId);
    if (!found) throw notFound('job', jobId);
    return found;
  };

  /** Per-tenant backpressure: too many unfinished jobs, or the oldest has waited too long. */
  const admit = (tenant: string) => {
    let queued = 0;
    let oldest = 0;
    for (const priority of ['interactive', 'batch'] as const) {
      const lane = lanes.get(priority, tenant)!;
      queued += lane.depth;
      if (lane.oldestUnixMs > 0 && (oldest === 0 || lane.oldestUnixMs < oldest)) oldest = lane.oldestUnixMs;
    }
    if (queued >= options.maxQueuedPerTenant) {
      deps.metrics?.rejected(tenant, 'queue_full');
      throw resourceExhausted({
        message: `tenant ${tenant} has ${queued} unfinished jobs (JOBS_MAX_QUEUED_PER_TENANT ${options.maxQueuedPerTenant}); retry later`,
        retryAfterMs: options.retryDelayMs,
        violations: [{ subject: `tenant:${tenant}`, description: `at most ${options.maxQueuedPerTenant} unfinished jobs` }],
        errorInfo: { reason: 'JOBS_QUEUE_FULL', domain: 'switchyard.jobs', metadata: { tenant, queued: String(queued) } },
      });
    }
    const age = oldest > 0 ? clock.now() - oldest : 0;
    if (age > options.maxQueueAgeMs) {
      deps.metrics?.rejected(tenant, 'queue_too_old');
      throw resourceExhausted({
        message: `tenant ${tenant}'s oldest unfinished job has waited ${Math.round(age / 1000)} s (JOBS_MAX_QUEUE_AGE_MS ${options.maxQueueAgeMs}); retry later`,
        retryAfterMs: options.retryDelayMs,
        violations: [{ subject: `tenant:${tenant}`, description: `oldest unfinished job at most ${options.maxQueueAgeMs} ms old` }],
        errorInfo: { reason: 'JOBS_QUEUE_TOO_OLD', domain: 'switchyard.jobs', metadata: { tenant, age_ms: String(age) } },
      });
    }
  };

  const enqueue = async (job: Job) => {
    try {
      await deps.queue.enqueue(lanePriority(job.priority), job.tenant, job.jobId);
    } catch (err) {
      throw unavailable(`job ${job.jobId} was recorded but could not be queued (NATS): ${(err as Error).message}; submit again with the same idempotency_key`);
    }
    const lane = lanes.get(lanePriority(job.priority), job.tenant)!;
    lane.depth += 1;
    lane.ready = true;
    deps.worker.wake();
  };

  const handlers: ImplementationOf<typeof JobsService> = {
    async submit(req, ctx) {
      const { tenant, apiKey } = authenticate(ctx.metadata);
      if (!req.request) throw invalidArgument('request', 'is required (the CompleteRequest to run)');
      if (!req.request.route) throw invalidArgument('request.route', 'is required');
      if (req.priority !== Priority.UNSPECIFIED && Priority[req.priority] === undefined) throw invalidArgument('priority', `unknown value ${req.priority}`);
      const expiresIn = req.expiresInMs === 0n ? options.defaultExpiryMs : Number(req.expiresInMs);
      if (expiresIn > options.maxExpiryMs) throw invalidArgument('expires_in_ms', `must be at most ${options.maxExpiryMs} (JOBS_MAX_EXPIRY_MS), got ${req.expiresInMs}`);
      if (req.idempotencyKey.length > MAX_IDEMPOTENCY_KEY) throw invalidArgument('idempotency_key', `must be at most ${MAX_IDEMPOTENCY_KEY} characters, got ${req.idempotencyKey.length}`);
      if (req.notifySubject) {
        try {
          assertPublishSubject(req.notifySubject);
        } catch (err) {
          throw invalidArgument('notify_subject', (err as Error).message);
        }
        if (req.notifySubject === SUBJECT_ROOT || req.notifySubject.startsWith(`${SUBJECT_ROOT}.`)) {
          throw invalidArgument('notify_subject', `must not be inside "${SUBJECT_ROOT}." (the gateway's own subjects)`);
        }
      }

      const now = clock.now();
      let jobId = newJobId(now);
      if (req.idempotencyKey) {
        const held = await store.claimIdempotencyKey(tenant, req.idempotencyKey, jobId);
        if (held !== jobId) {
          const existing = await store.get(tenant, held);
          if (existing) {
            // Re-offer a still-queued job: a Submit that failed after recording it may never have queued it (deduplicated by id).
            if (existing.job.state === JobState.QUEUED) await enqueue(existing.job);
            return { job: view(existing.job), created: false };
          }
          jobId = held; // Its first Submit died before recording it: finish the job under the claimed id.
        }
      }
      admit(tenant);
      const request = clone(CompleteRequestSchema, req.request);
      request.idempotencyKey = jobId;
      const job = create(JobSchema, {
        jobId,
        tenant,
        state: JobState.QUEUED,
        priority: req.priority === Priority.INTERACTIVE ? Priority.INTERACTIVE : Priority.BATCH,
        createdUnixMs: BigInt(now),
        expiresUnixMs: BigInt(now + expiresIn),
        idempotencyKey: req.idempotencyKey,
        notifySubject: req.notifySubject,
        request,
      });
      try {
        const revision = await store.create({ job, sealedKey: deps.seal.seal(apiKey, `${tenant}/${jobId}`) });
        deps.transitions.publish(job, JobState.UNSPECIFIED, revision);
      } catch (err) {
        if (!(err instanceof JobConflictError)) throw err;
        const existing = await store.get(tenant, jobId);
        if (existing) return { job: view(existing.job), created: false };
        throw err;
      }
      await enqueue(job);
      return { job: view(job), created: true };
    },

    async getJob(req, ctx) {
      const { tenant } = authenticate(ctx.metadata);
      const found = await load(tenant, req.jobId);
      return { job: view(found.job), depth: depth(tenant) };
    },

    async *watchJob(req, ctx) {
      const { tenant } = authenticate(ctx.metadata);
      let current = await load(tenant, req.jobId);
      yield { job: view(current.job) };
      while (!isFinal(current.job.state) && !ctx.signal.aborted) {
        await new Promise((resolve) => setTimeout(resolve, options.pollMs));
        const next = await store.get(tenant, req.jobId);
        if (!next) throw notFound('job', req.jobId);
        if (next.revision !== current.revision) yield { job: view(next.job) };
        current = next;
      }
    },

    async cancelJob(req, ctx) {
      const { tenant } = authenticate(ctx.metadata);
      for (;;) {
        const current = await load(tenant, req.jobId);
        if (isFinal(current.job.state)) return { job: current.job };
        try {
          const next = await deps.transitions.apply(current, (job) => {
            job.state = JobState.CANCELLED;
            job.error = statusOf(status.CANCELLED, 'cancelled by the caller');
          });
          deps.worker.abort(req.jobId);
          return { job: next.job };
        } catch (err) {
          if (!(err instanceof JobConflictError)) throw err;
        }
      }
    },

    async listJobs(req, ctx) {
      const { tenant } = authenticate(ctx.metadata);
      if (req.pageSize > MAX_PAGE) throw invalidArgument('page_size', `must be at most ${MAX_PAGE}, got ${req.pageSize}`);
      if (req.state !== JobState.UNSPECIFIED && JobState[req.state] === undefined) throw invalidArgument('state', `unknown value ${req.state}`);
      if (req.pageToken && !JOB_ID_PATTERN.test(req.pageToken)) throw invalidArgument('page_token', 'is not a token from a previous ListJobs');
      const size = req.pageSize || DEFAULT_PAGE;
      const ids = (await store.listIds(tenant)).filter((id) => !req.pageToken || id < req.pageToken);
      const jobs: Job[] = [];
      let last = '';
      for (const id of ids) {
        if (jobs.length >= size) break;
        last = id;
        const found = await store.get(tenant, id);
        if (!found || (req.state !== JobState.UNSPECIFIED && found.job.state !== req.state)) continue;
        jobs.push(summary(view(found.job)));
      }
      const more = ids.length > 0 && last !== ids[ids.length - 1] && jobs.length >= size;
      return { jobs, nextPageToken: more ? last : '', depth: depth(tenant) };
    },
  };
  return storeFailuresAsUnavailable(handlers, options.retryDelayMs);
}

/**
 * The only errors not raised on purpose come from NATS (KV, the queue) being
 * away: the caller hears UNAVAILABLE with a retry-after, not INTERNAL.
 */
function storeFailuresAsUnavailable(handlers: ImplementationOf<typeof JobsService>, retryDelayMs: number): ImplementationOf<typeof JobsService> {
  const wrap = (err: unknown): never => {
    if (err instanceof AppError) throw err;
    throw unavailable(`job store unreachable (NATS): ${(err as Error)?.message ?? String(err)}`, retryDelayMs);
  };
  const { watchJob, ...unary } = handlers;
  const wrapped = Object.fromEntries(
    Object.entries(unary).map(([name, fn]) => [name, (req: never, ctx: never) => (fn as (r: never, c: never) => Promise<unknown>)(req, ctx).catch(wrap)]),
  ) as Omit<ImplementationOf<typeof JobsService>, 'watchJob'>;
  return {
    ...wrapped,
    async *watchJob(req, ctx) {
      try {
        yield* watchJob(req, ctx, undefined as never) as AsyncIterable<never>;
      } catch (err) {
        wrap(err);
      }
    },
  };
}
