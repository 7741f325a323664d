import { loadConfigFile, resolveSecret, type SwitchyardConfig } from '@switchyard/config';
import { channelTarget } from '@switchyard/grpc';
import { commonServiceEnv, type Env, envInt, envOptional, envString, EnvError, natsUrlEnv, parseEnv } from '@switchyard/runtime';
import { largestValidRequestBytes } from './domain/validate-request';

const PEER_ADDRESS_FORMS =
  'replicas: host:port, a DNS name resolving to every replica (name:port or dns:///name:port), or a comma-separated list of ip:port; calls are balanced round-robin';

/** Every variable the router reads, with its default (feeds the README table). */
export const envSpec = {
  ...commonServiceEnv(50051, 9464),
  natsUrl: natsUrlEnv('NATS server: health/quota replicas (KV watch) and outcome events'),
  configPath: envString('SWITCHYARD_CONFIG', undefined, 'path of the gateway YAML config (deployments, routes, tenants, defaults)'),
  // The router is a CLIENT of the internal token: it sends it to the peers; its own callers authenticate with API keys.
  internalToken: envOptional('SWITCHYARD_INTERNAL_TOKEN', 'shared secret sent to internal services as metadata x-switchyard-internal-token (the router itself authenticates callers by API key)'),
  cacheAddr: envString('CACHE_ADDR', '127.0.0.1:50055', `cache service ${PEER_ADDRESS_FORMS}`),
  budgetAddr: envString('BUDGET_ADDR', '127.0.0.1:50054', `budget service ${PEER_ADDRESS_FORMS}`),
  limiterAddr: envString('LIMITER_ADDR', '127.0.0.1:50052', `limiter service ${PEER_ADDRESS_FORMS}`),
  breakerAddr: envString('BREAKER_ADDR', '127.0.0.1:50053', `breaker service ${PEER_ADDRESS_FORMS}`),
  peerDeadlineMs: envInt('PEER_DEADLINE_MS', 500, 'deadline of each call to an internal service; a slower peer gets its fallback policy', {
    min: 10,
    max: 60_000,
  }),
  settleRetryWindowMs: envInt(
    'SETTLE_RETRY_WINDOW_MS',
    60_000,
    'how long a failed budget Commit/Release or limiter Settle is retried (backoff, next replica) after its first try; about the reservations\' lifetime (BUDGET_RESERVATION_TTL_MS, LIMITER_RESERVATION_TTL_MS): an expired one is already charged at its worst case',
    { min: 0, max: 3_600_000 },
  ),
  // 20 ms, not 5: the breaker's cost is mostly per batch (about 250 µs of its CPU
  // plus a Redis script and a NATS ack), so at 1,000 calls/s a 20 ms window
  // cuts its CPU per outcome from 104 to 45 µs (`npm run bench -- breaker --batch
  // 5|20`). Other replicas learn of an outcome at most 20 ms later; this
  // replica's own breaker sees it at once.
  outcomeBatchMs: envInt(
    'OUTCOME_BATCH_MS',
    20,
    'attempt outcomes wait up to this long to leave together, as one durable NATS message (one ack) applied by the breaker in one Redis script per deployment; 0 = one message per outcome (what routers before batching sent)',
    { min: 0, max: 60_000 },
  ),
  outcomeBatchMax: envInt('OUTCOME_BATCH_MAX', 256, 'a batch of outcomes this large leaves at once, without waiting for OUTCOME_BATCH_MS', { min: 1, max: 4096 }),
  replicaId: envOptional('ROUTER_REPLICA_ID', 'identifies this replica as the holder of half-open probe permits (default: hostname-pid-random)'),
  idempotencyWindowMs: envInt(
    'IDEMPOTENCY_WINDOW_MS',
    86_400_000,
    'a request carrying idempotency_key runs at most once within this window; duplicates get the stored answer (kept by the cache service under idem:<key>)',
    { min: 1000, max: 2_592_000_000 },
  ),
  retryBudgetPercent: envInt('RETRY_BUDGET_PERCENT', 20, 'retry budget per router replica: retries (and fallbacks after transient failures) may add at most this % of requests; when spent, calls fail fast', {
    min: 0,
    max: 1000,
  }),
  retryBudgetMinPerSecond: envInt('RETRY_BUDGET_MIN_PER_SECOND', 10, 'retries always allowed per second on top of RETRY_BUDGET_PERCENT (so a quiet replica can still retry)', {
    min: 0,
    max: 100_000,
  }),
  retryBudgetWindowMs: envInt('RETRY_BUDGET_WINDOW_MS', 10_000, 'how long a request counts toward the retry budget (sliding window)', { min: 100, max: 600_000 }),
  admissionMaxWaitMs: envInt(
    'ADMISSION_MAX_WAIT_MS',
    30_000,
    'longest a call waits in the limiter\'s fair queue for quota on its last candidate (never past its deadline); 0 = fail at once with RESOURCE_EXHAUSTED; must not exceed the limiter\'s LIMITER_MAX_WAIT_MS',
    { min: 0, max: 600_000 },
  ),
  limiterWindowMs: envInt(
    'LIMITER_WINDOW_MS',
    60_000,
    'length of the RPM/TPM sliding window this router admits against while the limiter service is unreachable (its local share); keep it equal to the limiter\'s LIMITER_WINDOW_MS, which only time-scaled load tests change',
    { min: 100, max: 60_000 },
  ),
  limiterRetryMs: envInt(
    'LIMITER_SHARE_RETRY_MS',
    200,
    'while the limiter service is unreachable, how often the router probes it (GetQuota, off the calls\' path: calls admit from this router\'s share at once, without a hop); its first answer ends the local share',
    { min: 10, max: 60_000 },
  ),
  quotaLeases: envInt(
    'ROUTER_QUOTA_LEASES',
    1,
    '1 = quota leases: the router takes small leases of requests and tokens per (deployment, tenant) from the limiter and admits most calls without an Acquire hop, settling once per lease; near a limit, in the fair queue, for half-open probes, on a pair seeing fewer than 4 calls per lease window and on keys with a concurrency or TPD limit calls take the per-call Acquire, so limits stay exact (README, Performance). 0 = one Acquire and one Settle per call (the limiter sees each call at once, at the cost of two hops per call)',
    { min: 0, max: 1 },
  ),
  quotaLeaseMs: envInt(
    'ROUTER_QUOTA_LEASE_MS',
    1_000,
    'how long a quota lease admits calls (its unused part returns then); capped at 1/12 of LIMITER_WINDOW_MS, the lease\'s share of the window it is counted in',
    { min: 1, max: 10_000 },
  ),
  heartbeatMs: envInt('ROUTER_HEARTBEAT_MS', 1_000, 'router heartbeat period on NATS switchyard.router.replicas (the live routers divide every limit while the limiter service is unreachable)', {
    min: 50,
    max: 60_000,
  }),
  httpHost: envString('HTTP_HOST', '0.0.0.0', 'interface the HTTP edge (OpenAI- and Anthropic-compatible endpoints) binds'),
  httpPort: envInt('HTTP_PORT', 8080, 'HTTP edge port (0 = any free port); when unset and GRPC_PORT is 0 it is 0 too, so test and embedded routers never contend for 8080', {
    min: 0,
    max: 65535,
  }),
  httpMaxBodyBytes: envInt(
    'HTTP_MAX_BODY_BYTES',
    8 * 1024 * 1024,
    'largest HTTP request body; a larger one is answered 413 from its content-length before it is read (or as soon as a chunked body passes the bound). 8 MiB carries a 5 MiB image inline (base64)',
    { min: 1024, max: 1024 * 1024 * 1024 },
  ),
  httpHeadersTimeoutMs: envInt('HTTP_HEADERS_TIMEOUT_MS', 10_000, 'a client must send its request headers within this long (slow-loris cut)', { min: 100, max: 600_000 }),
  httpRequestTimeoutMs: envInt('HTTP_REQUEST_TIMEOUT_MS', 60_000, 'a client must send its whole request (headers and body) within this long; the answer itself is bounded by the call deadline, not this', {
    min: 100,
    max: 3_600_000,
  }),
  maxInFlight: envInt(
    'ROUTER_MAX_IN_FLIGHT',
    1024,
    'most calls (Complete and StreamComplete, gRPC and HTTP) this replica runs at once; the excess is refused at once, before any peer hop, with RESOURCE_EXHAUSTED (HTTP 429), RetryInfo 100 ms and ErrorInfo ROUTER_OVERLOADED (0 = no bound). With ROUTER_SHED_LAG_MS the ceiling of the adaptive bound; without, the bound itself: then set it to capacity × upstream latency (about 300 calls/s on 2 cores × about 3 s for a non-streamed completion ≈ 1024)',
    { min: 0, max: 1_000_000 },
  ),
  metricsMaxFeatures: envInt(
    'METRICS_MAX_FEATURES',
    50,
    'distinct caller-supplied `feature` values kept as metric label values per process (tokens and cost by feature); later ones are counted as `other`, so a caller cannot grow the series count without bound',
    { min: 0, max: 10_000 },
  ),
  shedLagMs: envInt(
    'ROUTER_SHED_LAG_MS',
    10,
    'adaptive bound on calls in flight (0 = off: ROUTER_MAX_IN_FLIGHT fixed): every 100 ms, an event-loop delay above this many ms shrinks the bound to ¾ of the calls in flight, and a window that reached the bound without it grows the bound by ⅛, between ROUTER_MIN_IN_FLIGHT and ROUTER_MAX_IN_FLIGHT. The bound so follows the calls the replica\'s CPU keeps up with (not a guess of upstream latency), and the loop stays prompt enough to refuse the excess within about this long, when the CPU is not taken by other processes',
    { min: 0, max: 10_000 },
  ),
  sliceMs: envInt(
    'ROUTER_SLICE_MS',
    2,
    'admitted calls\' CPU work from the provider\'s answer to the caller\'s runs in turns, and so does a call\'s work from arrival to its provider request when other calls are waiting for their turns, at most this many ms of them per event-loop iteration before the loop polls its sockets again (0 = off: each wave of answers runs to the end first). Calls arriving meanwhile are admitted or refused between slices, not after the wave; the longest wait for a turn is, beside the loop\'s delay, what the adaptive bound (ROUTER_SHED_LAG_MS) holds under its target',
    { min: 0, max: 1_000 },
  ),
  minInFlight: envInt(
    'ROUTER_MIN_IN_FLIGHT',
    128,
    'floor and starting point of the adaptive bound (ROUTER_SHED_LAG_MS; capped by ROUTER_MAX_IN_FLIGHT): this many calls are always admitted, whatever the event loop\'s delay, so a GC pause or a noisy neighbour never shuts the replica. About the calls in flight at saturation without queueing (saturation rate × an uncontended call\'s latency): 128 suits upstreams answering in about a second; in front of one answering in milliseconds, lower it towards the calls in flight at saturation (the stack bench, 32 in flight, uses 32)',
    { min: 1, max: 1_000_000 },
  ),
  budgetLeases: envInt(
    'ROUTER_BUDGET_LEASES',
    1,
    '1 = budget leases: this replica reserves money for many calls at once per tenant/API key/feature and admits each locally (one Reserve and one Commit per lease, not per call; hard caps stay exact, near a cap calls take the per-call path; threshold alerts fire when a lease is committed, up to ROUTER_BUDGET_LEASE_MS plus its calls\' duration later than per call). 0 = one Reserve and one Commit per call',
    { min: 0, max: 1 },
  ),
  budgetLeaseMs: envInt('ROUTER_BUDGET_LEASE_MS', 1_000, 'how long a budget lease admits calls; it is committed (one Commit of its calls\' summed actual cost, the rest returned) once its last call ends', {
    min: 10,
    max: 60_000,
  }),
  budgetLeaseCapPercent: envInt(
    'ROUTER_BUDGET_LEASE_CAP_PERCENT',
    1,
    'most a budget lease may hold, in % of the tenant\'s smallest hard cap (a lease for fewer than two calls is not taken: those calls take the per-call path); leased money unused for a lease\'s lifetime is what other replicas cannot reserve, so replicas × this % bounds the utilisation lost at the cap',
    { min: 0, max: 50 },
  ),
  defaultMaxTokens: envInt('DEFAULT_MAX_TOKENS', 1024, 'max_tokens used when a request leaves params.max_tokens at 0 (capped by defaults.requestLimits.maxTokens)', {
    min: 1,
    max: 1_000_000,
  }),
};

export type RouterEnv = ReturnType<typeof parseEnv<typeof envSpec>>;

export interface RouterConfig extends Omit<RouterEnv, 'configPath'> {
  /** The parsed gateway config. */
  switchyard: SwitchyardConfig;
  /** Provider API key per deployment id, resolved from `apiKey` references at load time; never logged. */
  providerKeys: Record<string, string>;
}

/**
 * Reads and validates the environment, the config file and every provider key
 * reference; throws listing every problem (a missing key names the deployment
 * and the variable), so a misconfigured router never starts half-able.
 */
export function loadConfig(env: Env): RouterConfig {
  const { configPath, ...rest } = parseEnv(envSpec, env);
  // Routers started with GRPC_PORT=0 (tests, the embedded demo) run several per host: 8080 would collide.
  if (env.HTTP_PORT === undefined && rest.grpcPort === 0) rest.httpPort = 0;
  const switchyard = loadConfigFile(configPath, env);
  const providerKeys: Record<string, string> = {};
  const problems: string[] = [];
  for (const [name, address] of Object.entries({ CACHE_ADDR: rest.cacheAddr, BUDGET_ADDR: rest.budgetAddr, LIMITER_ADDR: rest.limiterAddr, BREAKER_ADDR: rest.breakerAddr })) {
    try {
      channelTarget(address);
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  for (const [name, deployment] of Object.entries(switchyard.deployments)) {
    try {
      providerKeys[name] = resolveSecret(deployment.apiKey, env);
    } catch (err) {
      problems.push(`deployments.${name}.apiKey (${deployment.apiKey}): ${(err as Error).message}`);
    }
  }
  const longestRoute = Math.max(0, ...Object.keys(switchyard.routes).map((name) => name.length));
  const largestRequest = largestValidRequestBytes(switchyard.defaults.requestLimits, longestRoute);
  if (largestRequest > rest.grpcMaxReceiveBytes) {
    // Otherwise a request the limits call valid would be refused as too large by gRPC, with a confusing RESOURCE_EXHAUSTED.
    problems.push(
      `GRPC_MAX_RECEIVE_BYTES (${rest.grpcMaxReceiveBytes}): below the largest request defaults.requestLimits allow (up to ${largestRequest} bytes for maxPromptChars ${switchyard.defaults.requestLimits.maxPromptChars}); raise it to at least ${largestRequest} or lower the limits`,
    );
  }
  if (problems.length > 0) throw new EnvError(problems);
  return { ...rest, switchyard, providerKeys };
}
