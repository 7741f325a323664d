import { status } from '@switchyard/grpc';
import { ManualClock } from '@switchyard/util';
import type { BackgroundTasks } from '../background-tasks';
import { createBudgetPeer, type BudgetReserve } from './budget-peer';
import type { BudgetClient } from './peers';

const clock = new ManualClock(1_000_000);
const quiet = { warn() {}, error() {} };
/** Accounting retries are settle-retry.ts's subject: here each runs once. */
const once = { run: <T>(attempt: () => Promise<T>) => attempt(), stop() {} };

/** Runs background work at once and remembers what ran. */
function inlineTasks(): BackgroundTasks & { names: string[] } {
  const names: string[] = [];
  return {
    names,
    run(name, _fields, task) {
      names.push(name);
      void task();
    },
    drain: () => Promise.resolve(),
    pending: () => 0,
  };
}

function peer(client: Partial<BudgetClient>, tasks = inlineTasks()) {
  return createBudgetPeer({ client: client as BudgetClient, clock, logger: quiet, tasks, peerDeadlineMs: 500, settleRetry: once });
}

const reserve = (over: Partial<BudgetReserve> = {}): BudgetReserve => ({
  tenant: 'acme',
  feature: '',
  apiKeyId: 'k1',
  hardCapped: false,
  amountMicros: 700,
  requestId: 'req-1',
  deadlineAt: Number.POSITIVE_INFINITY,
  ...over,
});

const unreachable = Object.assign(new Error('No connection established'), { code: status.UNAVAILABLE });

describe('budget peer (DESIGN "When our own dependencies fail": budget)', () => {
  it('holds a granted reservation, and says when the budget service could not record it centrally', async () => {
    const ok = peer({ reserve: () => Promise.resolve({ granted: true, reservationId: 'r1', failOpen: false }) } as never);
    expect(await ok.reserve(reserve())).toEqual({ kind: 'granted', reservationId: 'r1' });
    const open = peer({ reserve: () => Promise.resolve({ granted: true, reservationId: 'r2', failOpen: true }) } as never);
    expect(await open.reserve(reserve())).toEqual({ kind: 'granted', reservationId: 'r2', degraded: { kind: 'budget-store-fail-open' } });
  });

  it('refuses over a hard cap with the cap, the amounts and when it resets', async () => {
    const denied = peer({
      reserve: () =>
        Promise.resolve({ granted: false, failClosed: false, deniedCap: { period: 2, scope: 1, subject: 'acme' }, limitMicros: 1000n, spentMicros: 900n, reservedMicros: 50n, resetsAtUnixMs: 1_060_000n }),
    } as never);
    const hold = await denied.reserve(reserve());
    expect(hold).toEqual({
      kind: 'denied',
      denial: {
        kind: 'exceeded',
        subject: 'tenant:acme',
        description: "hard day budget of 1000 micro-USD: spent 900 + reserved 50 + this call's worst case 700 would exceed it",
        limitMicros: 1000n,
        spentMicros: 900n,
        reservedMicros: 50n,
        requestedMicros: 700,
        retryAfterMs: 60_000,
      },
    });
  });

  it('fails closed for a tenant with hard caps when the budget service is unreachable, naming the cause', async () => {
    const down = peer({ reserve: () => Promise.reject(unreachable) } as never);
    expect(await down.reserve(reserve({ hardCapped: true }))).toEqual({ kind: 'denied', denial: { kind: 'unreachable', cause: 'UNAVAILABLE: No connection established' } });
  });

  it('fails open, degraded, for a tenant without hard caps', async () => {
    const down = peer({ reserve: () => Promise.reject(unreachable) } as never);
    expect(await down.reserve(reserve({ hardCapped: false }))).toEqual({ kind: 'unrecorded', degraded: { kind: 'budget-unreachable' } });
  });

  it('fails closed when the service answers that its own store is out of reach', async () => {
    const closed = peer({ reserve: () => Promise.resolve({ granted: false, failClosed: true }) } as never);
    expect(await closed.reserve(reserve())).toEqual({ kind: 'denied', denial: { kind: 'store-unavailable' } });
  });

  it("bounds the hop by the caller's deadline, never below 1 ms", async () => {
    const deadlines: number[] = [];
    const p = peer({ reserve: (_r: unknown, o: { deadlineMs: number }) => (deadlines.push(o.deadlineMs), Promise.resolve({ granted: true, reservationId: 'r' })) } as never);
    await p.reserve(reserve());
    await p.reserve(reserve({ deadlineAt: clock.now() + 110 }));
    await p.reserve(reserve({ deadlineAt: clock.now() - 5 }));
    expect(deadlines).toEqual([500, 100, 1]);
  });

  it('commits or releases only a reservation it holds, off the response path', () => {
    const calls: string[] = [];
    const tasks = inlineTasks();
    const p = peer({ commit: (r: { actualMicros: bigint }) => (calls.push(`commit ${r.actualMicros}`), Promise.resolve({})), release: () => (calls.push('release'), Promise.resolve({})) } as never, tasks);
    p.commit({ kind: 'granted', reservationId: 'r1' }, 42, 'req-1');
    p.release({ kind: 'granted', reservationId: 'r1' }, 'req-1');
    p.commit({ kind: 'unrecorded' }, 42, 'req-1');
    p.release({ kind: 'denied', denial: { kind: 'store-unavailable' } }, 'req-1');
    expect(calls).toEqual(['commit 42', 'release']);
    expect(tasks.names).toEqual(['budget commit', 'budget release']);
  });
});
