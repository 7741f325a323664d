export { freePort } from './free-port';
export { leaveSignalsToCaller } from './child-registry';
export type { ServerHandle } from './server-process';
export { startNats, type StartNatsOptions } from './nats-server';
export { startRedis, type StartRedisOptions } from './redis-server';
export { spawnProcess, parseReadyLine, type SpawnProcessOptions, type SpawnedProcess } from './spawn-process';
export { pidOfServer, processCpuMs } from './process-stats';
export {
  spawnSimulator,
  SIMULATOR_ENTRY,
  type SpawnSimulatorOptions,
  type SimulatorHandle,
  type SimulatorDeploymentCounters,
  type SimulatorRequestRecord,
} from './simulator';
export { startOtlpReceiver, flattenOtlpJson, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver';
export { startInMemoryTracing, type InMemoryTracing } from './in-memory-tracing';
export { startPrometheus, type StartPrometheusOptions, type PrometheusHandle, type PromSample, type PromAlert } from './prometheus-server';
export { CHEAP_PRICE, simDeploymentYaml, type SimDeploymentOptions } from './gateway-yaml';
