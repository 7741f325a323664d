export { type Env, type EnvVar, EnvError, envString, envOptional, envInt, parseEnv, describeEnv } from './env';
export { type RunningService, type MainLogger, type ProcessLike, runMain } from './run-main';
export { commonServiceEnv, internalAuthEnv, natsUrlEnv, redisUrlEnv } from './service-env';
