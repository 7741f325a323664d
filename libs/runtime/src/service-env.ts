import { isLoopbackHost } from '@switchyard/util';
import { type EnvVar, envInt, envOptional, envString } from './env';

const grpcHostEnv = envString('GRPC_HOST', '0.0.0.0', 'interface the gRPC server binds');

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
export function commonServiceEnv(defaultPort: number, defaultMetricsPort: number) {
  return {
    grpcHost: grpcHostEnv,
    grpcPort: envInt('GRPC_PORT', defaultPort, 'gRPC port (0 = any free port)', { min: 0, max: 65535 }),
    metricsPort: envInt(
      'METRICS_PORT',
      defaultMetricsPort,
      'port of the Prometheus /metrics endpoint, bound on GRPC_HOST (0 = any free port, announced as metrics_port in the readiness line); a port that cannot be bound stops start-up',
      { min: 0, max: 65535 },
    ),
    logLevel: envString('LOG_LEVEL', 'info', 'pino log level (trace, debug, info, warn, error, silent)'),
    grpcMaxReceiveBytes: envInt(
      'GRPC_MAX_RECEIVE_BYTES',
      DEFAULT_GRPC_MAX_RECEIVE_BYTES,
      "largest request message the gRPC server accepts; a bigger one is answered RESOURCE_EXHAUSTED before any handler runs (nothing reserved or charged). 4 MiB admits the router's largest valid request: 1,000,000 prompt characters at up to 3 UTF-8 bytes each, plus 256 messages (the cache takes at least CACHE_MAX_ENTRY_BYTES + 64 KiB)",
      { min: 64 * 1024, max: 1024 * 1024 * 1024 },
    ),
    shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', 10_000, 'on SIGTERM, how long in-flight calls may finish; any still running then are answered UNAVAILABLE (server shutting down: call again) and their work stopped'),
  };
}

const INTERNAL = 'SWITCHYARD_INTERNAL_TOKEN';
const OPERATOR = 'SWITCHYARD_OPERATOR_TOKEN';
const internalTokenRaw = envOptional(INTERNAL, '');

/** List of RPC names for a description: "A", "A and B", "A, B and C". */
function rpcList(names: string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/**
 * The credentials of an internal service (limiter, breaker, budget, cache),
 * which must accept only the router and operators (DESIGN "Security"). Secure
 * by default: without the internal token the service may bind loopback only,
 * so a default `GRPC_HOST=0.0.0.0` without it fails at start-up instead of
 * serving anyone who can reach the port. `rpcs` names, for the docs, the
 * service's operator-only calls and its read-only views (the access table the
 * handlers declare is what is enforced).
 */
export function internalAuthEnv(rpcs: { operator: string[]; views: string[] }): {
  internalToken: EnvVar<string | undefined>;
  operatorToken: EnvVar<string | undefined>;
} {
  const operatorUse = [
    rpcs.operator.length > 0
      ? `required for ${rpcList(rpcs.operator)} (the router's token gets PERMISSION_DENIED; unset: refused to everyone while an internal token is set)`
      : 'this service has no operator-only calls',
    ...(rpcs.views.length > 0 ? [`accepted on the read-only ${rpcList(rpcs.views)}`] : []),
  ].join('; ');
  return {
    internalToken: {
      name: INTERNAL,
      defaultText: '(unset)',
      description:
        'shared secret the router sends as metadata x-switchyard-internal-token; when set, a call without it (or the operator token) is UNAUTHENTICATED. Required unless GRPC_HOST is a loopback address',
      parse(env) {
        const token = internalTokenRaw.parse(env);
        const host = grpcHostEnv.parse(env);
        if (token === undefined && !isLoopbackHost(host)) {
          throw new Error(
            `${INTERNAL}: is required because GRPC_HOST ${host} is not a loopback address: without it anyone who can reach the port could call this service ` +
              `(force circuits, clear quota state, wipe the cache). Generate a secret (e.g. \`openssl rand -hex 32\`), set ${INTERNAL} to it here and on the router ` +
              `(and a different one in ${OPERATOR} for operator calls), or bind loopback only with GRPC_HOST=127.0.0.1`,
          );
        }
        return token;
      },
    },
    operatorToken: {
      name: OPERATOR,
      defaultText: '(unset)',
      description: `operators' secret, sent in the same metadata: ${operatorUse}. Must differ from SWITCHYARD_INTERNAL_TOKEN`,
      parse(env) {
        const token = envOptional(OPERATOR, '').parse(env);
        if (token === undefined) return undefined;
        const internal = internalTokenRaw.parse(env);
        if (internal === undefined) throw new Error(`${OPERATOR}: is set but ${INTERNAL} is not; set both (the operator token only narrows what the internal token allows)`);
        if (internal === token) throw new Error(`${OPERATOR}: must differ from ${INTERNAL} (the router holds that one; a leaked router credential must not be an operator credential)`);
        return token;
      },
    },
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
