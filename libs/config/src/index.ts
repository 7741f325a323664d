export {
  configSchema,
  NAME_PATTERN,
  providerKinds,
  budgetPeriods,
  type SwitchyardConfig,
  type DeploymentConfig,
  type RouteConfig,
  type TenantConfig,
  type ProviderKind,
  type BudgetPeriod,
} from './schema';
export { parseConfig, loadConfigFile } from './load';
export { ConfigError } from './errors';
export { interpolateEnv } from './interpolate';
export { resolveSecret, hashApiKey } from './secrets';
