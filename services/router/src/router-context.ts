import type { SwitchyardConfig, TenantConfig } from '@switchyard/config';
import type { ProviderAdapter } from '@switchyard/providers';
import type { Clock } from '@switchyard/util';
import type { HealthReplica } from './adapters/health-replica';
import type { OutcomePublisher } from './adapters/outcome-publisher';
import type { Peers } from './adapters/peers';
import type { QuotaReplica } from './adapters/quota-replica';
import type { BackgroundTasks } from './background-tasks';
import type { SettleRetry } from './settle-retry';
import type { Rng } from './domain/candidates';
import type { LatencyEstimate } from './domain/latency-estimate';
import type { LocalBreaker } from './domain/local-breaker';
import type { RateLimitReports } from './domain/rate-limit-reports';
import type { RetryBudget } from './domain/retry-budget';

/** pino-compatible subset the router logs through. */
export interface RouterLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

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
  peers: Peers;
  health: Pick<HealthReplica, 'get'>;
  quota: Pick<QuotaReplica, 'get'>;
  outcomes: OutcomePublisher;
  tasks: BackgroundTasks;
  /** Retries a failed budget Commit/Release or limiter Settle on the next replica until its reservation would expire. */
  settleRetry: SettleRetry;
  clock: Clock;
  rng: Rng;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  logger: RouterLogger;
  defaultMaxTokens: number;
  /** Per-hop deadline of peer calls (also bounds the fan-out). */
  peerDeadlineMs: number;
  /** Identifies this router replica (breaker probe holder). */
  replicaId: string;
  /** How long an idempotency key's answer is kept (IDEMPOTENCY_WINDOW_MS). */
  idempotencyWindowMs: number;
  /** Longest a call waits in the limiter's queue for quota on its last candidate (ADMISSION_MAX_WAIT_MS). */
  admissionMaxWaitMs: number;
  /** Deployments this replica is probing right now (half-open): at most one probe each. */
  probesInFlight: Set<string>;
  /** This replica's retry budget (shared by every call it serves). */
  retryBudget: RetryBudget;
  /** This replica's own circuits, consulted only while `outcomes.sharedHealthReachable()` is false. */
  localBreaker: LocalBreaker;
  /** Throttle of limiter Observes fed from successful answers' rate-limit headers. */
  rateLimitReports: RateLimitReports;
  /** Local EWMA of successful attempt latency (Complete: whole answer; streams: key `stream:<deployment>`, time to first token). */
  latency: LatencyEstimate;
}
