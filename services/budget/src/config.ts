import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, envInt, envOptional, envString, parseEnv } from '@switchyard/runtime';
import type { StoreFailurePolicy } from './adapters/grpc-budget-handlers';

/** Every variable the budget service reads, with its default (feeds the README table). */
export const envSpec = {
  grpcHost: envString('GRPC_HOST', '0.0.0.0', 'interface the gRPC server binds'),
  grpcPort: envInt('GRPC_PORT', 50054, 'gRPC port (0 = any free port)', { min: 0, max: 65535 }),
  natsUrl: envString('NATS_URL', 'nats://127.0.0.1:4222', 'NATS server for budget alert events'),
  redisUrl: envString('REDIS_URL', 'redis://127.0.0.1:6379', 'Redis holding spend and reservations'),
  logLevel: envString('LOG_LEVEL', 'info', 'pino log level'),
  shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', 10_000, 'how long in-flight calls may finish on SIGTERM'),
  configPath: envString('SWITCHYARD_CONFIG', undefined, 'path of the gateway YAML config (tenants and their budgets)'),
  internalToken: envOptional('SWITCHYARD_INTERNAL_TOKEN', 'shared secret callers must send as x-switchyard-internal-token'),
  reservationTtlMs: envInt('BUDGET_RESERVATION_TTL_MS', 120_000, 'lifetime of a reservation whose Reserve says ttl_ms 0', {
    min: 1_000,
    max: 3_600_000,
  }),
  redisCommandTimeoutMs: envInt('BUDGET_REDIS_TIMEOUT_MS', 500, 'a Redis call slower than this counts as the store being down', {
    min: 10,
    max: 60_000,
  }),
  onStoreFailure: envString(
    'BUDGET_ON_STORE_FAILURE',
    'closed',
    'Reserve when Redis is unreachable and the tenant has hard caps: closed (deny) or open (grant unrecorded)',
  ),
};

export type BudgetEnv = ReturnType<typeof parseEnv<typeof envSpec>>;

export interface BudgetConfig extends Omit<BudgetEnv, 'configPath' | 'onStoreFailure'> {
  onStoreFailure: StoreFailurePolicy;
  /** The parsed gateway config (tenants and their caps). */
  switchyard: SwitchyardConfig;
}

/** Reads and validates the environment and the config file; throws listing every problem. */
export function loadConfig(env: Env): BudgetConfig {
  const { configPath, onStoreFailure, ...rest } = parseEnv(envSpec, env);
  if (onStoreFailure !== 'closed' && onStoreFailure !== 'open') {
    throw new Error(`BUDGET_ON_STORE_FAILURE: must be "closed" or "open", got ${JSON.stringify(onStoreFailure)}`);
  }
  return { ...rest, onStoreFailure, switchyard: loadConfigFile(configPath, env) };
}
