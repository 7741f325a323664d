import { envInt, envOptional, envString } from './env';

/**
 * The variables every service process reads, declared once so their names,
 * defaults and meanings cannot drift apart between services. Each service
 * spreads this into its own `envSpec` and adds what is particular to it.
 */
export function commonServiceEnv(defaultPort: number) {
  return {
    grpcHost: envString('GRPC_HOST', '0.0.0.0', 'interface the gRPC server binds'),
    grpcPort: envInt('GRPC_PORT', defaultPort, 'gRPC port (0 = any free port)', { min: 0, max: 65535 }),
    logLevel: envString('LOG_LEVEL', 'info', 'pino log level (trace, debug, info, warn, error, silent)'),
    shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', 10_000, 'on SIGTERM, how long in-flight calls may finish before they are cancelled'),
    internalToken: envOptional(
      'SWITCHYARD_INTERNAL_TOKEN',
      'shared secret between the router and internal services (metadata x-switchyard-internal-token); when set, calls without it are UNAUTHENTICATED',
    ),
  };
}

/** NATS_URL, with what this service uses NATS for. */
export function natsUrlEnv(purpose: string) {
  return envString('NATS_URL', 'nats://127.0.0.1:4222', purpose);
}

/** REDIS_URL, with what this service keeps in Redis. */
export function redisUrlEnv(purpose: string) {
  return envString('REDIS_URL', 'redis://127.0.0.1:6379', purpose);
}
