export { createSimulator, type Simulator, type SimulatorOptions } from './server';
export {
  BUILT_IN_SCENARIO,
  DEPLOYMENT_DEFAULTS,
  FAULT_KINDS,
  ScenarioError,
  parseScenarioText,
  validateScenario,
  resolveDeployment,
  type Scenario,
  type DeploymentSettings,
  type DeploymentOverrides,
  type Distribution,
  type FaultKind,
  type OutageWindow,
} from './scenario';
export { formatOpenAIDuration, formatRfc3339 } from './durations';
export type { DeploymentCounters, RecordedRequest } from './recorder';
