import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { JobSchema, JobState, Priority } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { Registry } from '@switchyard/telemetry';
import { statusOf } from '../job-transitions';
import { LaneSet } from '../domain/lanes';
import { createJobsMetrics } from './jobs-metrics';

const job = (state: JobState, extra: MessageInitShape<typeof JobSchema> = {}) =>
  create(JobSchema, { jobId: 'j1', tenant: 'acme', priority: Priority.INTERACTIVE, createdUnixMs: 1_000n, state, ...extra });

describe('jobs metrics', () => {
  it('starts every configured lane at 0, so rates and the failure alert read 0 before the first job', async () => {
    const registry = new Registry();
    createJobsMetrics(['acme', 'globex'], registry);
    const text = await registry.metrics();
    expect(text).toContain('switchyard_jobs_submitted_total{tenant="globex",priority="batch"} 0');
    expect(text).toContain('switchyard_jobs_finished_total{tenant="acme",priority="interactive",state="failed"} 0');
    expect(text).toContain('switchyard_jobs_rejected_total{tenant="acme",reason="queue_full"} 0');
  });

  it('counts a job through its life by lane and state: submitted, waited, requeued for quota, finished with its duration', async () => {
    const registry = new Registry();
    const metrics = createJobsMetrics(['acme'], registry);
    metrics.transition(job(JobState.QUEUED), JobState.UNSPECIFIED, 1_000);
    metrics.transition(job(JobState.RUNNING, { attempts: 1 }), JobState.QUEUED, 3_000);
    metrics.transition(job(JobState.QUEUED, { attempts: 1, error: statusOf(status.RESOURCE_EXHAUSTED, 'quota') }), JobState.RUNNING, 3_500);
    metrics.transition(job(JobState.RUNNING, { attempts: 2 }), JobState.QUEUED, 4_000);
    metrics.transition(job(JobState.FAILED, { attempts: 2 }), JobState.RUNNING, 6_000);
    metrics.redelivered('acme', 'interactive');
    metrics.rejected('stranger', 'queue_too_old');
    const text = await registry.metrics();
    expect(text).toContain('switchyard_jobs_submitted_total{tenant="acme",priority="interactive"} 1');
    expect(text).toContain('switchyard_jobs_requeued_total{tenant="acme",priority="interactive",reason="quota"} 1');
    expect(text).toContain('switchyard_jobs_requeued_total{tenant="acme",priority="interactive",reason="transient"} 0');
    expect(text).toContain('switchyard_jobs_finished_total{tenant="acme",priority="interactive",state="failed"} 1');
    expect(text).toContain('switchyard_jobs_redeliveries_total{tenant="acme",priority="interactive"} 1');
    // Only the first start is queue wait (2 s after Submit); the duration runs Submit → final (5 s).
    expect(text).toContain('switchyard_jobs_queue_wait_seconds_count{priority="interactive"} 1');
    expect(text).toContain('switchyard_jobs_queue_wait_seconds_sum{priority="interactive"} 2');
    expect(text).toContain('switchyard_jobs_duration_seconds_sum{priority="interactive",state="failed"} 5');
    // A tenant outside the config cannot grow the series count.
    expect(text).toContain('switchyard_jobs_rejected_total{tenant="unknown",reason="queue_too_old"} 1');
  });

  it('reads lane depth, oldest age and in-flight calls at scrape time', async () => {
    const registry = new Registry();
    const metrics = createJobsMetrics(['acme'], registry);
    const lanes = new LaneSet(['acme']);
    lanes.get('batch', 'acme')!.depth = 7;
    lanes.get('batch', 'acme')!.oldestUnixMs = 10_000;
    metrics.watch(() => lanes.all(), () => 3, () => 40_000);
    const text = await registry.metrics();
    expect(text).toContain('switchyard_jobs_queue_depth{tenant="acme",priority="batch"} 7');
    expect(text).toContain('switchyard_jobs_queue_depth{tenant="acme",priority="interactive"} 0');
    expect(text).toContain('switchyard_jobs_oldest_age_seconds{tenant="acme",priority="batch"} 30');
    expect(text).toContain('switchyard_jobs_in_flight 3');
  });
});
