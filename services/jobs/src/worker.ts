import { clone, create, fromBinary } from '@bufbuild/protobuf';
import { CompleteRequestSchema, JobState, StatusSchema, type RouterService, type Status } from '@switchyard/contracts';
import { parseGrpcError, status, STATUS_DETAILS_KEY, type Client } from '@switchyard/grpc';
import { withTraceRoot } from '@switchyard/telemetry';
import type { Clock } from '@switchyard/util';
import { JobConflictError, type JobStore, type VersionedJob } from './adapters/job-store';
import type { KeySeal } from './adapters/key-seal';
import { laneKey, type QueuedJob, type WorkQueue } from './adapters/work-queue';
import type { JobsMetrics } from './adapters/jobs-metrics';
import { type LaneSet } from './domain/lanes';
import { classifyRouterError } from './domain/router-outcome';
import { isFinal, statusOf, type JobTransitions } from './job-transitions';

export interface WorkerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WorkerOptions {
  concurrency: number;
  ackWaitMs: number;
  pollMs: number;
  retryDelayMs: number;
  maxTransientFailures: number;
}

export interface WorkerStats {
  /** Router calls made (including requeued and replayed ones). */
  routerCalls: number;
  finished: number;
  requeued: number;
  inFlight: number;
}

/** The error of a failed router call as a google.rpc.Status: the router's own (all typed details kept) when it sent one. */
function routerStatus(err: unknown): Status {
  const raw = (err as { metadata?: { get(key: string): unknown[] } })?.metadata?.get(STATUS_DETAILS_KEY)?.[0];
  if (raw instanceof Uint8Array) {
    try {
      return fromBinary(StatusSchema, raw);
    } catch {
      // Fall through to code and message.
    }
  }
  const parsed = parseGrpcError(err);
  return create(StatusSchema, { code: parsed.code, message: parsed.message });
}

/**
 * The worker side of a replica: a dispatcher that fills free slots one job at
 * a time from the fair lane order (LaneSet), and the run of one job. A job is
 * acked only once its final state (or its requeue) is stored; until then it
 * is heartbeated, so only a dead worker's jobs are redelivered.
 */
export class JobWorker {
  readonly stats: WorkerStats = { routerCalls: 0, finished: 0, requeued: 0, inFlight: 0 };
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  private readonly running = new Map<string, AbortController>();
  private loops: Promise<void>[] = [];
  private readonly active = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      queue: WorkQueue;
      store: JobStore;
      transitions: JobTransitions;
      lanes: LaneSet;
      router: Client<typeof RouterService.method>;
      seal: KeySeal;
      clock: Clock;
      logger: WorkerLogger;
      metrics?: Pick<JobsMetrics, 'redelivered'>;
    },
    private readonly options: WorkerOptions,
  ) {}

  start(): void {
    this.loops = [this.pollLoop(), this.dispatchLoop()];
  }

  /** Something may be deliverable now (a Submit, a slot freed, a poll). */
  wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  /** Abandons a job this replica is running (it was cancelled). */
  abort(jobId: string): void {
    this.running.get(jobId)?.abort(new Error('job cancelled'));
  }

  /**
   * Stops taking jobs and gives the running ones `graceMs` to store their
   * outcome; any still running after that are simply left: unacked, they are
   * redelivered to another replica after the ack wait, and their router call
   * replays under the same idempotency key.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wake();
    await Promise.all(this.loops);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.active]), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  private waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async refreshDepths(): Promise<void> {
    const stats = await this.deps.queue.stats();
    for (const lane of this.deps.lanes.all()) {
      const s = stats.get(laneKey(lane.priority, lane.tenant));
      lane.depth = s?.depth ?? 0;
      lane.oldestUnixMs = s?.oldestUnixMs ?? 0;
      if (lane.depth > 0) lane.ready = true;
    }
  }

  private async pollLoop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.refreshDepths();
        this.wake();
      } catch (err) {
        this.deps.logger.warn({ err: { message: (err as Error).message } }, 'queue depth poll failed');
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.pollMs));
    }
  }

  private async dispatchLoop(): Promise<void> {
    while (!this.stopping) {
      if (this.stats.inFlight >= this.options.concurrency) {
        await this.waitForWake(this.options.pollMs);
        continue;
      }
      const lane = this.deps.lanes.next();
      if (!lane) {
        await this.waitForWake(this.options.pollMs);
        continue;
      }
      let job: QueuedJob | undefined;
      try {
        job = await this.deps.queue.take(lane.priority, lane.tenant);
      } catch (err) {
        this.deps.logger.warn({ err: { message: (err as Error).message }, lane: laneKey(lane.priority, lane.tenant) }, 'taking a job failed');
        await this.waitForWake(this.options.pollMs);
        continue;
      }
      if (!job) {
        lane.ready = false;
        continue;
      }
      if (this.stopping) {
        job.requeue(0);
        break;
      }
      this.stats.inFlight += 1;
      const run = this.run(job)
        .catch((err: unknown) => {
          // Store unreachable or similar: give it back; it is retried (the router call is idempotent).
          this.deps.logger.warn({ err: { message: (err as Error).message }, job_id: job.jobId }, 'job run failed; requeued');
          job.requeue(this.options.retryDelayMs);
        })
        .finally(() => {
          this.stats.inFlight -= 1;
          this.active.delete(run);
          this.wake();
        });
      this.active.add(run);
    }
  }

  /**
   * A job is user work that arrives with no request around it, so its run is
   * a trace root (the router call and the state writes nest under it); the
   * work-queue heartbeats run on a timer set up before the span and stay out.
   */
  private async run(q: QueuedJob): Promise<void> {
    const heartbeat = setInterval(() => q.heartbeat(), Math.max(250, Math.floor(this.options.ackWaitMs / 3)));
    try {
      await withTraceRoot(
        'job run',
        async () => {
          const claimed = await this.claim(q);
          if (!claimed) return;
          const outcome = await this.callRouter(claimed);
          await this.settle(q, outcome);
        },
        { 'switchyard.job_id': q.jobId, 'switchyard.tenant': q.tenant },
      );
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** QUEUED (or RUNNING, after a crash) → RUNNING; expired jobs become EXPIRED here and are never sent. */
  private async claim(q: QueuedJob): Promise<VersionedJob | undefined> {
    const { store, transitions, clock } = this.deps;
    for (;;) {
      const current = await store.get(q.tenant, q.jobId);
      if (!current || isFinal(current.job.state)) {
        // Gone (kept time passed) or already final (cancelled, or a duplicate delivery): nothing to run.
        q.ack();
        return undefined;
      }
      // Taken while RUNNING: the worker that held it stopped heartbeating (crashed or stalled), so the queue redelivered it.
      if (current.job.state === JobState.RUNNING) this.deps.metrics?.redelivered(q.tenant, q.priority);
      try {
        if (clock.now() >= Number(current.job.expiresUnixMs)) {
          await transitions.apply(current, (job) => {
            job.state = JobState.EXPIRED;
            job.error = statusOf(status.DEADLINE_EXCEEDED, `job expired at ${new Date(Number(job.expiresUnixMs)).toISOString()} before it could run; it was not sent`);
          });
          this.stats.finished += 1;
          q.ack();
          return undefined;
        }
        return await transitions.apply(current, (job) => {
          job.state = JobState.RUNNING;
          job.attempts += 1;
          job.positionEstimate = 0n;
          if (job.startedUnixMs === 0n) job.startedUnixMs = BigInt(clock.now());
        });
      } catch (err) {
        if (!(err instanceof JobConflictError)) throw err;
      }
    }
  }

  private async callRouter(current: VersionedJob): Promise<{ ok: true; response: unknown } | { ok: false; error: unknown }> {
    const { job } = current;
    const controller = new AbortController();
    this.running.set(job.jobId, controller);
    try {
      const apiKey = this.deps.seal.open(current.sealedKey, `${job.tenant}/${job.jobId}`);
      const request = clone(CompleteRequestSchema, job.request ?? create(CompleteRequestSchema));
      // The job id is the router's idempotency key: a redelivered job replays the stored answer.
      request.idempotencyKey = job.jobId;
      this.stats.routerCalls += 1;
      const response = await this.deps.router.complete(request, {
        deadline: new Date(Number(job.expiresUnixMs)),
        metadata: { 'x-api-key': apiKey },
        signal: controller.signal,
      });
      return { ok: true, response };
    } catch (error) {
      return { ok: false, error };
    } finally {
      this.running.delete(job.jobId);
    }
  }

  private async settle(q: QueuedJob, outcome: Awaited<ReturnType<JobWorker['callRouter']>>): Promise<void> {
    const { store, transitions, clock } = this.deps;
    for (;;) {
      const current = await store.get(q.tenant, q.jobId);
      if (!current || isFinal(current.job.state)) {
        // Cancelled while running: the cancellation stands.
        q.ack();
        return;
      }
      try {
        if (outcome.ok) {
          await transitions.apply(current, (job) => {
            job.state = JobState.SUCCEEDED;
            job.response = outcome.response as typeof job.response;
            job.error = undefined;
          });
          this.stats.finished += 1;
          q.ack();
          return;
        }
        const error = routerStatus(outcome.error);
        const parsed = parseGrpcError(outcome.error);
        const action = classifyRouterError(
          { code: error.code, retryDelayMs: parsed.details.retryDelayMs, reason: parsed.details.errorInfo?.reason },
          current.job.transientFailures,
          { retryDelayMs: this.options.retryDelayMs, maxTransient: this.options.maxTransientFailures },
        );
        const left = Number(current.job.expiresUnixMs) - clock.now();
        if (action.kind === 'requeue' && action.delayMs < left) {
          await transitions.apply(current, (job) => {
            job.state = JobState.QUEUED;
            job.error = error;
            if (action.transient) job.transientFailures += 1;
          });
          this.stats.requeued += 1;
          q.requeue(action.delayMs);
          return;
        }
        await transitions.apply(current, (job) => {
          // Waiting for quota past its expiry: it never ran upstream, so it EXPIRED.
          job.state = action.kind === 'requeue' ? JobState.EXPIRED : JobState.FAILED;
          job.error = error;
        });
        this.stats.finished += 1;
        q.ack();
        return;
      } catch (err) {
        if (!(err instanceof JobConflictError)) throw err;
      }
    }
  }
}
