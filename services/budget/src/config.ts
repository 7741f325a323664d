import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { commonServiceEnv, type Env, envInt, envString, internalAuthEnv, natsUrlEnv, parseEnv, redisUrlEnv } from '@switchyard/runtime';
import type { StoreFailurePolicy } from './adapters/grpc-budget-handlers';

/** Every variable the budget service reads, with its default (feeds the README table). */
export const envSpec = {
  ...commonServiceEnv(50054, 9467),
  ...internalAuthEnv({ operator: [], views: ['GetBudget'] }),
  natsUrl: natsUrlEnv('NATS server for budget alert events'),
  redisUrl: redisUrlEnv('Redis holding spend and reservations (keys sy:bud:*)'),
  configPath: envString('SWITCHYARD_CONFIG', undefined, 'path of the gateway YAML config (tenants and their budgets)'),
  reservationTtlMs: envInt('BUDGET_RESERVATION_TTL_MS', 120_000, 'lifetime of a reservation whose Reserve says ttl_ms 0; one neither committed nor released by then is charged at its reserved amount (a late Commit corrects it to the actual cost)', {
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
