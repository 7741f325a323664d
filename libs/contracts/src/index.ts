/**
 * Generated protobuf-es v2 code for every Switchyard contract, re-exported flat
 * (message, enum and service names are unique across packages). Regenerate with
 * `npm run generate`; never edit files under ./gen by hand.
 */
export * from './gen/switchyard/events/v1/types_pb';
export * from './gen/switchyard/events/v1/outcome_pb';
export * from './gen/switchyard/events/v1/health_pb';
export * from './gen/switchyard/events/v1/quota_pb';
export * from './gen/switchyard/events/v1/budget_pb';
export * from './gen/switchyard/events/v1/job_pb';
export * from './gen/switchyard/router/v1/router_pb';
export * from './gen/switchyard/limiter/v1/limiter_pb';
export * from './gen/switchyard/breaker/v1/breaker_pb';
export * from './gen/switchyard/budget/v1/budget_pb';
export * from './gen/switchyard/cache/v1/cache_pb';
export * from './gen/switchyard/jobs/v1/jobs_pb';
export * from './gen/google/rpc/status_pb';
export * from './gen/google/rpc/error_details_pb';
export * from './gen/grpc/health/v1/health_pb';
