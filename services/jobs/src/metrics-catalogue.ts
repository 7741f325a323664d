import type { HistogramSpec, MetricSpec } from '@switchyard/telemetry';

/*
 * Every metric the jobs service exports (alerts, dashboard and README are
 * written against this file). A lane is one tenant's queue of one priority.
 * Cardinality: tenant ≤ tenants in config; priority ∈ interactive, batch;
 * state ∈ succeeded, failed, cancelled, expired; reason ∈ transient, quota
 * (requeues) or queue_full, queue_too_old (rejections).
 */

/** Seconds buckets for a job's life: from a fraction of a second (an idle queue) to the 6 h longest expiry. */
export const JOB_DURATION_BUCKETS_SECONDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600] as const;

export const jobsMetrics = {
  submitted: {
    name: 'switchyard_jobs_submitted_total',
    help: 'Jobs accepted by Submit (created, not idempotent repeats), by lane',
    labels: ['tenant', 'priority'],
  } satisfies MetricSpec,
  rejected: {
    name: 'switchyard_jobs_rejected_total',
    help: "Submits refused with RESOURCE_EXHAUSTED by the tenant's backpressure: too many unfinished jobs (queue_full) or the oldest waited too long (queue_too_old)",
    labels: ['tenant', 'reason'],
  } satisfies MetricSpec,
  finished: {
    name: 'switchyard_jobs_finished_total',
    help: 'Jobs that reached a final state (succeeded, failed, cancelled, expired), by lane and state',
    labels: ['tenant', 'priority', 'state'],
  } satisfies MetricSpec,
  requeued: {
    name: 'switchyard_jobs_requeued_total',
    help: 'Jobs put back into their lane after a router answer worth retrying: transient (UNAVAILABLE: counted toward JOBS_MAX_TRANSIENT_FAILURES when the router itself answered it, not when no router did) or quota (RESOURCE_EXHAUSTED, retried until expiry)',
    labels: ['tenant', 'priority', 'reason'],
  } satisfies MetricSpec,
  redeliveries: {
    name: 'switchyard_jobs_redeliveries_total',
    help: 'Jobs taken while already RUNNING: the worker holding them stopped heartbeating (crash, stall past JOBS_ACK_WAIT_MS) or could not store the outcome, so the queue delivered them again',
    labels: ['tenant', 'priority'],
  } satisfies MetricSpec,
  queueDepth: {
    name: 'switchyard_jobs_queue_depth',
    help: 'Unfinished jobs (queued or held by a worker) per lane, from the last depth poll (JOBS_POLL_MS); compare with JOBS_MAX_QUEUED_PER_TENANT',
    labels: ['tenant', 'priority'],
  } satisfies MetricSpec,
  oldestAge: {
    name: 'switchyard_jobs_oldest_age_seconds',
    help: "Age of each lane's oldest unfinished job (0 when empty); compare with JOBS_MAX_QUEUE_AGE_MS",
    labels: ['tenant', 'priority'],
  } satisfies MetricSpec,
  inFlight: {
    name: 'switchyard_jobs_in_flight',
    help: 'Router calls this replica runs for jobs now (at most JOBS_CONCURRENCY)',
    labels: [],
  } satisfies MetricSpec,
  queueWait: {
    name: 'switchyard_jobs_queue_wait_seconds',
    help: 'Time from Submit to the first start of a job, by priority',
    labels: ['priority'],
    buckets: JOB_DURATION_BUCKETS_SECONDS,
  } satisfies HistogramSpec,
  duration: {
    name: 'switchyard_jobs_duration_seconds',
    help: 'Time from Submit to the final state, by priority and state',
    labels: ['priority', 'state'],
    buckets: JOB_DURATION_BUCKETS_SECONDS,
  } satisfies HistogramSpec,
} as const;
