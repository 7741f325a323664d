/**
 * Jobs service: durable queued router calls over a JetStream work queue,
 * drained fairly per tenant at the providers' pace.
 */
export { start, type JobsDeps, type JobsLogger, type RunningJobsService } from './start';
export { loadConfig, envSpec, type JobsConfig, type JobsEnv } from './config';
export { LaneSet, type Lane, type LanePriority } from './domain/lanes';
