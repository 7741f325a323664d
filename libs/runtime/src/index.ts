export { type Env, type EnvVar, EnvError, envString, envOptional, envInt, parseEnv, describeEnv } from './env';
export { type Lifecycle, type LifecycleLogger, createLifecycle } from './lifecycle';
export { type RunningService, type MainLogger, type ProcessLike, runMain } from './run-main';
export { commonServiceEnv, DEFAULT_GRPC_MAX_RECEIVE_BYTES, internalAuthEnv, natsUrlEnv, redisUrlEnv } from './service-env';
