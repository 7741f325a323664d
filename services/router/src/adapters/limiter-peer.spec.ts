import { KeyKind, LimitKind } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { ManualClock } from '@switchyard/util';
import type { SwitchyardConfig } from '@switchyard/config';
import type { BackgroundTasks } from '../background-tasks';
import { createLimiterFallback } from './limiter-fallback';
import { createLimiterPeer, type LimiterAcquire } from './limiter-peer';
import { createQuotaLeases } from './quota-leases';
import type { LimiterClient } from './peers';

const clock = new ManualClock(1_000_000);
const quiet = { info() {}, warn() {}, error() {} };
/** d1 allows 10 RPM at headroom 0.8: a share of 8 for the one live router. */
const gateway = {
  deployments: { d1: { limits: { rpm: 10 } } },
  tenants: { acme: { limits: {} } },
  defaults: { headroom: 0.8 },
} as unknown as SwitchyardConfig;
/** Accounting retries are settle-retry.ts's subject: here each runs once. */
const once = { run: <T>(attempt: () => Promise<T>) => attempt(), stop() {} };
const tasks: BackgroundTasks = { run: (_n, _f, task) => void task(), drain: () => Promise.resolve(), pending: () => 0 };

function peer(acquire: LimiterClient['acquire']) {
  const fallback = createLimiterFallback({ gateway, clock, windowMs: 60_000, retryMs: 200, probe: () => Promise.resolve(false), liveRouters: () => 1, logger: quiet });
  return createLimiterPeer({ client: { acquire } as LimiterClient, clock, logger: quiet, tasks, peerDeadlineMs: 500, settleRetry: once, fallback });
}

const ask = (over: Partial<LimiterAcquire> = {}): LimiterAcquire => ({
  deployment: 'd1',
  tenant: 'acme',
  tokens: 100,
  maxWaitMs: 0,
  requestId: 'req-1',
  deadlineAt: Number.POSITIVE_INFINITY,
  ...over,
});

const failing = (code: status) => (() => Promise.reject(Object.assign(new Error(status[code]), { code }))) as unknown as LimiterClient['acquire'];

describe('limiter peer (DESIGN "When our own dependencies fail": limiter)', () => {
  it("admits from this router's share, degraded, when the limiter is unreachable — and refuses beyond it, never unmetered", async () => {
    const down = peer(failing(status.UNAVAILABLE));
    const first = await down.acquire(ask());
    expect(first).toMatchObject({ granted: true, note: 'limiter unavailable: local share', degraded: { kind: 'limiter-unavailable' } });
    for (let i = 1; i < 8; i++) expect(await down.acquire(ask())).toMatchObject({ granted: true });
    expect(await down.acquire(ask())).toMatchObject({ granted: false, reason: expect.stringContaining('deployment d1 RPM exhausted') });
  });

  it("says so when the limiter admitted from its local fallback", async () => {
    const local = peer((() => Promise.resolve({ granted: true, reservationId: 'r1', localFallback: true })) as never);
    expect(await local.acquire(ask())).toEqual({ granted: true, reservationId: 'r1', note: 'limiter local fallback', degraded: { kind: 'limiter-local-fallback' } });
  });

  it('a queued wait that outlived its hop is the caller running out of time short of quota, not an outage', async () => {
    const admission = await peer(failing(status.DEADLINE_EXCEEDED)).acquire(ask({ maxWaitMs: 200 }));
    expect(admission).toEqual({ granted: false, retryAfterMs: 0, reason: 'd1 quota: still queued when the wait ran out', final: true });
  });

  it('an acquire the limiter refuses as invalid is a misconfiguration: refused, never admitted unmetered', async () => {
    const admission = await peer(failing(status.INVALID_ARGUMENT)).acquire(ask());
    expect(admission).toMatchObject({ granted: false, final: true, reason: 'limiter rejected the acquire (INVALID_ARGUMENT: INVALID_ARGUMENT)' });
  });

  it('a caller who left while queued is not admitted', async () => {
    const gone = new AbortController();
    gone.abort();
    const admission = await peer(failing(status.CANCELLED)).acquire(ask({ signal: gone.signal, maxWaitMs: 200 }));
    expect(admission).toEqual({ granted: false, retryAfterMs: 0, reason: 'caller cancelled while waiting for quota', final: true });
  });

  it("waits on a lease's Acquire for at most half the caller's time left, then asks per call: never past the caller's deadline", async () => {
    // The limiter never answers lease Acquires (a slow limiter: the lease's hop is bounded only by the peer deadline), and answers per-call ones at once.
    const acquire = ((req: { leaseMs?: number }) =>
      req.leaseMs ? new Promise(() => undefined) : Promise.resolve({ granted: true, reservationId: 'per-call' })) as unknown as LimiterClient['acquire'];
    const fallback = createLimiterFallback({ gateway, clock, windowMs: 60_000, retryMs: 200, probe: () => Promise.resolve(false), liveRouters: () => 1, logger: quiet });
    const book = createQuotaLeases({ clock, useMs: 1_000, holdMs: 55_000, caps: () => ({ requests: 8, tokens: 8_000 }), minDemand: 1 });
    const leased = createLimiterPeer({
      client: { acquire } as LimiterClient,
      clock,
      logger: quiet,
      tasks,
      peerDeadlineMs: 60_000,
      settleRetry: once,
      fallback,
      leasing: { book, leaseMs: 1_000, reservationTtlMs: 60_000, sweepMs: 1_000_000 },
    });
    const started = Date.now();
    const admission = await leased.acquire(ask({ deadlineAt: clock.now() + 200 }));
    leased.stop();
    expect(admission).toEqual({ granted: true, reservationId: 'per-call' });
    // Half of the 200 ms left went to the lease, on the real timer; far from the 60 s peer deadline.
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 10_000);

  it('names the key and the limit that blocked; a blocked tenant ends the call', async () => {
    const blocked = peer((() => Promise.resolve({ granted: false, retryAfterMs: 900, blockedKey: { kind: KeyKind.TENANT, id: 'acme' }, blockedLimit: LimitKind.RPM })) as never);
    expect(await blocked.acquire(ask())).toEqual({ granted: false, retryAfterMs: 900, reason: 'tenant acme RPM exhausted', final: true });
  });
});
