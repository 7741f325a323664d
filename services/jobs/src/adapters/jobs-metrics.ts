import { JobState, Priority, type Job } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { counter, gauge, histogram, metricsRegistry, type Registry } from '@switchyard/telemetry';
import { LANE_PRIORITIES, type Lane } from '../domain/lanes';
import { jobsMetrics as M } from '../metrics-catalogue';

export type RejectReason = 'queue_full' | 'queue_too_old';

/** Prometheus-facing instruments of the jobs service (tenant ids come from the config, priorities and states are closed sets). */
export interface JobsMetrics {
  /** Every state change of a job (JobTransitions), `nowMs` the time it was stored. */
  transition(job: Job, previous: JobState, nowMs: number): void;
  rejected(tenant: string, reason: RejectReason): void;
  /** A job taken from the queue while RUNNING: its previous holder stopped heartbeating. */
  redelivered(tenant: string, priority: string): void;
  /** Lane depths and ages, read at scrape time from the lanes the worker polls, and its calls in flight. */
  watch(lanes: () => readonly Lane[], inFlight: () => number, nowMs: () => number): void;
}

const FINAL_STATES = [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED] as const;
const REQUEUE_REASONS = ['transient', 'quota'] as const;
const REJECT_REASONS: readonly RejectReason[] = ['queue_full', 'queue_too_old'];

function priorityLabel(priority: Priority): string {
  return priority === Priority.INTERACTIVE ? 'interactive' : 'batch';
}

const stateLabel = (state: JobState) => JobState[state].toLowerCase();

export function createJobsMetrics(tenants: readonly string[], registry: Registry = metricsRegistry()): JobsMetrics {
  const submitted = counter(registry, M.submitted);
  const rejected = counter(registry, M.rejected);
  const finished = counter(registry, M.finished);
  const requeued = counter(registry, M.requeued);
  const redeliveries = counter(registry, M.redeliveries);
  const queueWait = histogram(registry, M.queueWait);
  const duration = histogram(registry, M.duration);
  let lanes: () => readonly Lane[] = () => [];
  let inFlight = () => 0;
  let now = () => Date.now();
  gauge(registry, M.queueDepth, (g) => {
    for (const lane of lanes()) g.set({ tenant: lane.tenant, priority: lane.priority }, lane.depth);
  });
  gauge(registry, M.oldestAge, (g) => {
    for (const lane of lanes()) g.set({ tenant: lane.tenant, priority: lane.priority }, lane.oldestUnixMs > 0 ? Math.max(0, now() - lane.oldestUnixMs) / 1000 : 0);
  });
  gauge(registry, M.inFlight, (g) => g.set(inFlight()));
  // Zero series for every configured lane, so rates and the failure alert read 0 rather than "no data" before the first job.
  for (const tenant of tenants) {
    for (const reason of REJECT_REASONS) rejected.inc({ tenant, reason }, 0);
    for (const priority of LANE_PRIORITIES) {
      submitted.inc({ tenant, priority }, 0);
      redeliveries.inc({ tenant, priority }, 0);
      for (const state of FINAL_STATES) finished.inc({ tenant, priority, state: stateLabel(state) }, 0);
      for (const reason of REQUEUE_REASONS) requeued.inc({ tenant, priority, reason }, 0);
    }
  }
  const tenantLabel = (tenant: string) => (tenants.includes(tenant) ? tenant : 'unknown');

  return {
    transition: (job, previous, nowMs) => {
      const tenant = tenantLabel(job.tenant);
      const priority = priorityLabel(job.priority);
      const sinceSubmit = Math.max(0, nowMs - Number(job.createdUnixMs)) / 1000;
      if (previous === JobState.UNSPECIFIED && job.state === JobState.QUEUED) submitted.inc({ tenant, priority });
      else if (job.state === JobState.RUNNING && job.attempts === 1) queueWait.observe({ priority }, sinceSubmit);
      else if (previous === JobState.RUNNING && job.state === JobState.QUEUED) {
        requeued.inc({ tenant, priority, reason: job.error?.code === status.RESOURCE_EXHAUSTED ? 'quota' : 'transient' });
      }
      if ((FINAL_STATES as readonly JobState[]).includes(job.state)) {
        const state = stateLabel(job.state);
        finished.inc({ tenant, priority, state });
        duration.observe({ priority, state }, sinceSubmit);
      }
    },
    rejected: (tenant, reason) => rejected.inc({ tenant: tenantLabel(tenant), reason }),
    redelivered: (tenant, priority) => redeliveries.inc({ tenant: tenantLabel(tenant), priority }),
    watch: (read, running, clock) => {
      lanes = read;
      inFlight = running;
      now = clock;
    },
  };
}
