import { hashApiKey } from '@switchyard/config';
import { BreakerService, CircuitState, Role } from '@switchyard/contracts';
import { createClient, parseGrpcError, status, type ParsedGrpcError } from '@switchyard/grpc';
import { sleep } from '@switchyard/util';
import { operatorMetadata, startStack, type Stack } from '../../services/router/test/stack';

/**
 * Issue 6, the retry budget on its own: 100 % 503 on every deployment of a
 * route under steady load, with every circuit pinned CLOSED so the breaker
 * cannot be what stops the retries. Upstream attempts are counted at the
 * simulator between two cuts taken during the load (after a warm-up), so
 * requests in flight at either cut weigh the same on both sides.
 *
 * RETRY_BUDGET_SECONDS sets the load's length (default 10 s; the issue's figure
 * is 60 s: `RETRY_BUDGET_SECONDS=60 npx jest test/router/retry-budget`), and
 * RETRY_BUDGET_RATE the caller requests per second (default 40).
 */

const KEY = 'retry-budget-key';
const auth = { metadata: { 'x-api-key': KEY } };
const LOAD_SECONDS = Number(process.env.RETRY_BUDGET_SECONDS ?? 10);
const RATE_PER_SECOND = Number(process.env.RETRY_BUDGET_RATE ?? 40);
const WARMUP_SECONDS = 5;
const DEADLINE_MS = 5_000;
const DEPLOYMENTS = ['sick-a', 'sick-b'] as const;

/**
 * The replica's budget: retries ≤ PERCENT % of requests + MIN_PER_SECOND/s.
 * The design default (20 % + 10/s) allows 1 + 0.2 + 10/40 = 1.45 attempts per
 * request at a test's 40 req/s: the per-second floor only vanishes at
 * production rates, and on a loaded runner the rate this process manages
 * varies. With the floor at 0 the bound is the share alone, 1.1 at any rate,
 * below the issue's 1.2 (the floor itself is covered by retry-budget.spec).
 */
const BUDGET_PERCENT = 10;
const BUDGET_MIN_PER_SECOND = 0;
/** Retry-After on the simulator's 503s: the wait before a paid retry reaches it. */
const RETRY_AFTER_MS = 200;
/**
 * A retry reaching the simulator between the cuts was paid for by a request at
 * most this long before: Retry-After, its jitter, and this process's scheduling
 * on a loaded runner (the sender, router and peers share one event loop).
 */
const PAID_LAG_MS = 2_000;
/** Attempts per deployment: without a budget a call on the two-deployment route makes up to 6. */
const RETRY = { maxAttempts: 3, baseMs: 50, capMs: 400 };

function gatewayYaml(sim: string): string {
  const dep = (provider: string, model: string) => `
    provider: ${provider}
    baseUrl: ${provider === 'openai' ? `${sim}/v1` : sim}
    model: ${model}
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }`;
  return `
deployments:
  sick-a: ${dep('openai', 'sick-a-m')}
  sick-b: ${dep('anthropic', 'sick-b-m')}
routes:
  r-sick: { cacheable: false, candidates: [{ deployment: sick-a }, { deployment: sick-b, priority: 1 }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: ${RETRY.maxAttempts}, baseMs: ${RETRY.baseMs}, capMs: ${RETRY.capMs} }
`;
}

const scenario = {
  seed: 6,
  defaults: { limits: { rpm: 10_000_000, tpm: 10_000_000_000 } },
  deployments: {
    'sick-a-m': { faults: { unavailable: 1 }, retryAfterMs: RETRY_AFTER_MS },
    'sick-b-m': { faults: { unavailable: 1 }, retryAfterMs: RETRY_AFTER_MS },
  },
};

describe('retry budget alone (breaker pinned CLOSED, simulator, real peers)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario);
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it(`${LOAD_SECONDS} s of 100 % 503 on every deployment at ${RATE_PER_SECOND} req/s: upstream attempts ÷ caller requests stays within the budget (≤ 1.2) after the first ${WARMUP_SECONDS} s, and callers fail fast with UNAVAILABLE`, async () => {
    const breaker = createClient(BreakerService, stack.routerEnv.BREAKER_ADDR!, { defaultDeadlineMs: 5_000, defaultMetadata: operatorMetadata });
    const { client } = await stack.startRouter({
      RETRY_BUDGET_PERCENT: String(BUDGET_PERCENT),
      RETRY_BUDGET_MIN_PER_SECOND: String(BUDGET_MIN_PER_SECOND),
    });
    try {
      for (const deployment of DEPLOYMENTS) {
        await breaker.forceState({ deployment, state: CircuitState.CLOSED, reason: 'retry budget test: only the budget may stop retries' });
      }
      await stack.sim.reset();
      const upstream = async () => {
        const c = await stack.sim.counters();
        return DEPLOYMENTS.reduce((n, d) => n + (c[`${d}-m`]?.received ?? 0), 0);
      };

      const intervalMs = 1000 / RATE_PER_SECOND;
      const started = Date.now();
      let next = started;
      const sentAt: number[] = [];
      let sent = 0;
      let cut0: { at: number; sent: number; upstream: number } | undefined;
      const outcomes: Promise<ParsedGrpcError | 'ok'>[] = [];
      while (Date.now() - started < LOAD_SECONDS * 1000) {
        if (!cut0 && Date.now() - started >= WARMUP_SECONDS * 1000) cut0 = { at: Date.now(), sent, upstream: await upstream() };
        sent += 1;
        sentAt.push(Date.now());
        outcomes.push(
          client
            .complete({ route: 'r-sick', messages: [{ role: Role.USER, content: `storm ${sent}` }], params: { maxTokens: 8 } }, { ...auth, deadlineMs: DEADLINE_MS })
            .then(() => 'ok' as const, parseGrpcError),
        );
        // Steady pacing: a slow tick on a loaded runner is not made up by a burst.
        next = Math.max(next + intervalMs, Date.now());
        await sleep(next - Date.now());
      }
      const cut1 = { at: Date.now(), sent, upstream: await upstream() };
      const results = await Promise.all(outcomes);

      expect(cut0).toBeDefined();
      const requests = cut1.sent - cut0!.sent;
      const attempts = cut1.upstream - cut0!.upstream;
      const seconds = (cut1.at - cut0!.at) / 1000;
      const ratio = attempts / requests;
      // What the budget allows between the cuts: its share of the requests that
      // may have paid for these retries (those between the cuts and those just
      // before the first), its per-second floor over that span plus one second
      // banked, and the share's unspent fraction.
      const paidBefore = sentAt.filter((t) => t >= cut0!.at - PAID_LAG_MS && t < cut0!.at).length;
      const promised = 1 + ((BUDGET_PERCENT / 100) * (requests + paidBefore) + BUDGET_MIN_PER_SECOND * (seconds + PAID_LAG_MS / 1000 + 1) + 1) / requests;
      const failures = results.filter((r): r is ParsedGrpcError => r !== 'ok');
      const single = failures.filter((f) => f.details.errorInfo?.metadata.attempts === '1').length;
      console.log(
        `retry budget alone: ${sent} caller requests in ${LOAD_SECONDS} s; after ${WARMUP_SECONDS} s: ${requests} requests (${(requests / seconds).toFixed(1)}/s), ${attempts} upstream attempts, ratio ${ratio.toFixed(3)} (budget promises ≤ ${promised.toFixed(3)}); ${single}/${failures.length} calls failed after one attempt`,
      );

      expect(ratio).toBeLessThanOrEqual(1.2);
      // Retries do happen up to the budget: the ratio is its doing, not every call stopping at one attempt for another reason.
      expect(ratio).toBeGreaterThanOrEqual(1 + BUDGET_PERCENT / 200);
      expect(ratio).toBeLessThanOrEqual(promised);

      expect(failures).toHaveLength(results.length);
      for (const f of failures) {
        expect(f.code).toBe(status.UNAVAILABLE);
        // RetryInfo passes on the deployments' Retry-After.
        expect(f.details.retryDelayMs).toBe(RETRY_AFTER_MS);
        // The breaker had no say: no candidate was skipped as open.
        expect(Object.keys(f.details.errorInfo?.metadata ?? {}).filter((k) => k.startsWith('skipped_'))).toEqual([]);
      }
      // Callers are told why they were not retried.
      const toldBudget = failures.filter((f) => f.details.errorInfo?.metadata.stopped_because === 'retry budget exhausted: failing fast' && /retry budget exhausted/.test(f.message)).length;
      expect(toldBudget).toBeGreaterThanOrEqual(0.75 * failures.length);
      // Most callers were failed fast on their first failure instead of retried or sent on to sick-b.
      expect(single).toBeGreaterThanOrEqual(0.75 * failures.length);
      // Every upstream attempt is one a caller was told about, and none went unreported.
      const reported = failures.reduce((n, f) => n + Number(f.details.errorInfo?.metadata.attempts ?? 0), 0);
      expect(reported).toBe(await upstream());

      const health = await breaker.listHealth({});
      for (const d of DEPLOYMENTS) expect(health.deployments.find((h) => h.ref?.deployment === d)?.state).toBe(CircuitState.CLOSED);
    } finally {
      for (const deployment of DEPLOYMENTS) await breaker.forceState({ deployment, release: true, reason: 'retry budget test done' }).catch(() => undefined);
      breaker.close();
    }
  }, (LOAD_SECONDS + 40) * 1000);
});
