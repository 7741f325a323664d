/**
 * gRPC plumbing shared by every Switchyard service: protobuf-es services served
 * over grpc-js (with health and reflection), typed promise clients, and the one
 * mapping from errors to gRPC status with google.rpc details.
 */
export { createGrpcServer, toServiceDefinition, type GrpcServerHandle, type GrpcServerOptions } from './server';
export type { ArrivalCheck } from './refuse-on-arrival';
export { createClient, type ClientOptions } from './client';
export { channelTarget, type ChannelTarget } from './channel-target';
export {
  AppError,
  isAppError,
  invalidArgument,
  invalidArguments,
  unauthenticated,
  permissionDenied,
  notFound,
  resourceExhausted,
  unavailable,
  failedPrecondition,
  deadlineExceeded,
  internal,
  type AppErrorOptions,
  type ErrorDetails,
  type FieldViolation,
  type QuotaViolation,
  type PreconditionViolation,
  type ErrorInfoDetail,
  type ResourceInfoDetail,
} from './app-error';
export {
  parseGrpcError,
  encodeStatusDetails,
  encodeBoundedStatus,
  decodeStatusDetails,
  STATUS_DETAILS_KEY,
  type BoundedStatus,
  type ParsedGrpcError,
} from './status-details';
export { STATUS_BOUNDS, boundText } from './status-bounds';
export { INTERNAL_ERROR_MESSAGE } from './error-status';
export { createHealthRegistry, type HealthRegistry } from './health';
export { reflectionPackageDefinition } from './reflection';
export {
  serviceRegistration,
  type AccessLevel,
  type AccessTable,
  type CallContext,
  type CallOptions,
  type Client,
  type GrpcLogger,
  type ImplementationOf,
  type ServerStreamingHandler,
  type ServiceImplementation,
  type ServiceRegistration,
  type StreamSend,
  type UnaryHandler,
} from './types';
export { status, Metadata, credentials, ServerCredentials } from '@grpc/grpc-js';
export { INTERNAL_TOKEN_METADATA, createAccessGuard, exposureProblem, type AccessGuard, type InternalAuth } from './internal-token';
