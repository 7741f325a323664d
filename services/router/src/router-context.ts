import type { SwitchyardConfig, TenantConfig } from '@switchyard/config';
import type { ProviderAdapter } from '@switchyard/providers';
import type { Clock } from '@switchyard/util';
import type { HealthReplica } from './adapters/health-replica';
import type { OutcomePublisher } from './adapters/outcome-publisher';
import type { BreakerPeer } from './adapters/breaker-peer';
import type { BudgetPeer } from './adapters/budget-peer';
import type { CachePeer } from './adapters/cache-peer';
import type { LimiterPeer } from './adapters/limiter-peer';
import type { QuotaReplica } from './adapters/quota-replica';
import type { RouterMetrics } from './adapters/router-metrics';
import type { BackgroundTasks } from './background-tasks';
import type { RecentLoopDelay } from './handlers/loop-delay';
import type { Rng } from './domain/candidates';
import type { LatencyEstimate } from './domain/latency-estimate';
import type { LocalBreaker } from './domain/local-breaker';
import type { RetryBudget } from './domain/retry-budget';

/** pino-compatible subset the router logs through. */
export interface RouterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /** pino's: lets a per-call line skip building its fields when its level is off (absent: on). */
  isLevelEnabled?(level: string): boolean;
}

/** Whether a per-call info line would be written: its fields are built only then. */
export const logsInfo = (logger: RouterLogger): boolean => logger.isLevelEnabled?.('info') ?? true;

/** A caller API key as configured: which tenant it belongs to. */
export interface KeyOwner {
  tenantId: string;
  tenant: TenantConfig;
  apiKeyId: string;
}

/** Everything a handler needs, built once by start(). */
export interface RouterContext {
  gateway: SwitchyardConfig;
  /** sha256(api key) → owner. */
  keys: ReadonlyMap<string, KeyOwner>;
  /** One adapter per deployment id, created at start (each owns its SDK client and connection pool). */
  adapters: ReadonlyMap<string, ProviderAdapter>;
  /** The four peer services, each behind an adapter that owns its fallback policy (DESIGN "When our own dependencies fail"). */
  budget: BudgetPeer;
  limiter: LimiterPeer;
  cache: CachePeer;
  breaker: BreakerPeer;
  health: Pick<HealthReplica, 'get'>;
  quota: Pick<QuotaReplica, 'get'>;
  outcomes: OutcomePublisher;
  tasks: BackgroundTasks;
  clock: Clock;
  rng: Rng;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  logger: RouterLogger;
  defaultMaxTokens: number;
  /** Longest a call waits in the limiter's queue for quota on its last candidate (ADMISSION_MAX_WAIT_MS). */
  admissionMaxWaitMs: number;
  /** Deployments this replica is probing right now (half-open): at most one probe each. */
  probesInFlight: Set<string>;
  /** This replica's retry budget (shared by every call it serves). */
  retryBudget: RetryBudget;
  /** This replica's own circuits, consulted only while `outcomes.sharedHealthReachable()` is false. */
  localBreaker: LocalBreaker;
  /** Local EWMA of successful attempt latency (Complete: whole answer; streams: key `stream:<deployment>`, time to first token). */
  latency: LatencyEstimate;
  /** Prometheus instruments (metrics-catalogue.ts). */
  metrics: RouterMetrics;
  /** How late this process has lately run (handlers/loop-delay.ts): kept back from every call's deadline. Absent: the loop is taken to keep time. */
  loopDelay?: RecentLoopDelay;
  /** Waits for this call's turn of the CPU (handlers/run-queue.ts) where its work resumes. Absent: at once. */
  turn?: () => Promise<void>;
}
