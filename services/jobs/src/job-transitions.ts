import { clone, create, toBinary } from '@bufbuild/protobuf';
import { JobEventSchema, JobSchema, JobState, StatusSchema, type Job, type Status } from '@switchyard/contracts';
import type { EventBus } from '@switchyard/nats';
import { subjects } from '@switchyard/nats';
import type { Clock } from '@switchyard/util';
import type { JobStore, VersionedJob } from './adapters/job-store';
import type { JobsMetrics } from './adapters/jobs-metrics';

export const FINAL_STATES: ReadonlySet<JobState> = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED]);

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.has(state);
}

export function statusOf(code: number, message: string): Status {
  return create(StatusSchema, { code, message });
}

export interface TransitionLogger {
  warn(obj: object, msg?: string): void;
}

/**
 * Every job state change goes through here: a compare-and-set write of the
 * record (JobConflictError when someone else moved it first), then the event
 * on `switchyard.job.<tenant>.<state>` and on the job's notify subject. The
 * sealed API key is dropped once the job is final: it is never needed again.
 */
export class JobTransitions {
  constructor(
    private readonly store: JobStore,
    private readonly bus: EventBus,
    private readonly clock: Clock,
    private readonly logger: TransitionLogger,
    /** Counts every state change (submitted, started, requeued, final): this is the one place they all pass. */
    private readonly metrics?: Pick<JobsMetrics, 'transition'>,
  ) {}

  async apply(current: VersionedJob, change: (job: Job) => void): Promise<VersionedJob> {
    const job = clone(JobSchema, current.job);
    const previous = job.state;
    change(job);
    if (isFinal(job.state) && job.finishedUnixMs === 0n) job.finishedUnixMs = BigInt(this.clock.now());
    const sealedKey = isFinal(job.state) ? new Uint8Array() : current.sealedKey;
    const revision = await this.store.update({ job, sealedKey }, current.revision);
    if (job.state !== previous) this.publish(job, previous, revision);
    return { job, sealedKey, revision };
  }

  /** Publishes the event of a state change (off the caller's path; a lost event is recovered by GetJob). */
  publish(job: Job, previous: JobState, epoch: number): void {
    this.metrics?.transition(job, previous, this.clock.now());
    const event = toBinary(
      JobEventSchema,
      create(JobEventSchema, {
        jobId: job.jobId,
        tenant: job.tenant,
        state: job.state,
        previousState: previous,
        errorCode: job.error?.code ?? 0,
        attempts: job.attempts,
        timeUnixMs: BigInt(this.clock.now()),
        epoch: BigInt(epoch),
      }),
    );
    const targets = [subjects.job(job.tenant, JobState[job.state].toLowerCase()), ...(job.notifySubject ? [job.notifySubject] : [])];
    for (const subject of targets) {
      this.bus.publish(subject, event).catch((err: unknown) => this.logger.warn({ err, job_id: job.jobId, subject }, 'job event not published'));
    }
  }
}

/** The job as stored, without its bodies (ListJobs). */
export function summary(job: Job): Job {
  const out = clone(JobSchema, job);
  out.request = undefined;
  out.response = undefined;
  return out;
}

export { JobState, toBinary };
