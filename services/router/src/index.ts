export { start, type RouterDeps, type RunningRouter } from './start';
export { loadConfig, envSpec, type RouterConfig, type RouterEnv } from './config';
export { createPeers, INTERNAL_TOKEN_METADATA, type Peers, type PeerAddresses } from './adapters/peers';
export { TRACE_ID_HEADER } from './handlers/tracing';
export type { RouterLogger } from './router-context';
