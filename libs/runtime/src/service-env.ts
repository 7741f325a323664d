import { envInt, envOptional, envString } from './env';

/**
 * Default of GRPC_MAX_RECEIVE_BYTES. The router's largest valid request is
 * defaults.requestLimits.maxPromptChars (1,000,000 UTF-16 units, at most 3
 * UTF-8 bytes each: 3,000,000 bytes) plus per-message framing for 256
 * messages and the short fields: about 3.02 MB. 4 MiB holds it with room and
 * stops anything larger before it is parsed. (Inline images, when requests
 * carry them, will need this raised.)
 */
export const DEFAULT_GRPC_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

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
    grpcMaxReceiveBytes: envInt(
      'GRPC_MAX_RECEIVE_BYTES',
      DEFAULT_GRPC_MAX_RECEIVE_BYTES,
      "largest request message the gRPC server accepts; a bigger one is answered RESOURCE_EXHAUSTED before any handler runs (nothing reserved or charged). 4 MiB admits the router's largest valid request: 1,000,000 prompt characters at up to 3 UTF-8 bytes each, plus 256 messages (the cache takes at least CACHE_MAX_ENTRY_BYTES + 64 KiB)",
      { min: 64 * 1024, max: 1024 * 1024 * 1024 },
    ),
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
