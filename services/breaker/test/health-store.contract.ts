import { ManualClock } from '@switchyard/util';
import type { BreakerPolicy, DeploymentIdentity, OutcomeErrorClass } from '../src/domain/circuit';
import { DEFAULT_POLICY, effectiveState, windowStats } from '../src/domain/circuit';
import type { HealthStore } from '../src/domain/health-store';

export interface HealthStoreFixture {
  store: HealthStore;
  /** Drives the store's time (injected into both implementations). */
  clock: ManualClock;
  /** A second store over the same state (another replica); memory: the same store. */
  peer?: HealthStore;
  close(): Promise<void>;
}

export type HealthStoreFactory = (policy: BreakerPolicy) => Promise<HealthStoreFixture>;

const policy: BreakerPolicy = DEFAULT_POLICY;
let n = 0;
const dep = (): DeploymentIdentity => ({ deployment: `dep-${process.pid}-${Date.now()}-${n++}`, provider: 'openai', model: 'gpt-4o' });

/**
 * One behaviour, two stores: the in-memory store (embedded demo) and the Redis
 * Lua store (production) must be indistinguishable through HealthStore.
 */
export function healthStoreContract(name: string, factory: HealthStoreFactory): void {
  describe(`HealthStore contract: ${name}`, () => {
    let fx: HealthStoreFixture;
    beforeEach(async () => {
      fx = await factory(policy);
    });
    afterEach(async () => {
      await fx.close();
    });

    const fail = (id: DeploymentIdentity, cls: OutcomeErrorClass = 'OVERLOADED', eventId?: string) =>
      fx.store.record(id, { errorClass: cls, latencyMs: 50, eventId });
    const succeed = (id: DeploymentIdentity, latencyMs = 50) => fx.store.record(id, { errorClass: undefined, latencyMs });

    it('opens after 5 consecutive failures and reports the transition exactly once', async () => {
      const id = dep();
      for (let i = 0; i < 4; i++) expect((await fail(id)).transition).toBeUndefined();
      const step = await fail(id);
      expect(step.transition).toMatchObject({ from: 'CLOSED', to: 'OPEN', epoch: 1, forced: false, failureRate: 1 });
      expect(step.transition!.openUntil).toBe(fx.clock.now() + 30_000);
      expect(step.record).toMatchObject({ state: 'OPEN', consecutiveFailures: 5, lastErrorClass: 'OVERLOADED', provider: 'openai', model: 'gpt-4o' });
      expect((await fail(id)).transition).toBeUndefined();
      expect(await fx.store.openDeployments()).toContain(id.deployment);
    });

    it('raiseEpoch lifts a record behind the epoch consumers hold, and leaves one that is not', async () => {
      const id = dep();
      expect(await fx.store.raiseEpoch(id.deployment, 9)).toBeUndefined();
      for (let i = 0; i < 5; i++) await fail(id);
      const lifted = await fx.store.raiseEpoch(id.deployment, 9);
      expect(lifted?.record).toMatchObject({ deployment: id.deployment, state: 'OPEN', epoch: 10, consecutiveFailures: 5 });
      expect(lifted?.transition).toBeUndefined();
      expect((await fx.store.raiseEpoch(id.deployment, 10))?.record.epoch).toBe(10);
      expect((await fx.store.raiseEpoch(id.deployment, 3))?.record.epoch).toBe(10);
      // Epochs go on from there.
      await fx.store.force(id, { state: 'CLOSED', release: false, reason: '' });
      expect((await fx.store.observe(id.deployment))?.record).toMatchObject({ state: 'CLOSED', epoch: 11 });
    });

    it('a success resets the count; client errors never open', async () => {
      const id = dep();
      for (let i = 0; i < 4; i++) await fail(id, 'SERVER_ERROR');
      await succeed(id);
      for (let i = 0; i < 4; i++) await fail(id, 'TIMEOUT');
      for (let i = 0; i < 20; i++) expect((await fail(id, 'INVALID_REQUEST')).transition).toBeUndefined();
      const step = await fx.store.observe(id.deployment);
      expect(step!.record).toMatchObject({ state: 'CLOSED', consecutiveFailures: 4, lastErrorClass: 'INVALID_REQUEST' });
      expect(windowStats(step!.record)).toEqual({ calls: 9, failures: 8, slow: 0 });
    });

    it('ignores an outcome whose event id was already seen', async () => {
      const id = dep();
      for (let i = 0; i < 4; i++) expect((await fail(id, 'NETWORK', `e${i}`)).duplicate).toBe(false);
      const dup = await fail(id, 'NETWORK', 'e3');
      expect(dup.duplicate).toBe(true);
      expect(dup.transition).toBeUndefined();
      expect(dup.record.consecutiveFailures).toBe(4);
      expect((await fail(id, 'NETWORK', 'e4')).transition).toMatchObject({ to: 'OPEN' });
    });

    it('reads OPEN until open_until, then HALF_OPEN; the first observer alone gets the transition', async () => {
      const id = dep();
      for (let i = 0; i < 5; i++) await fail(id);
      fx.clock.advance(29_999);
      expect((await fx.store.observe(id.deployment))!.transition).toBeUndefined();
      fx.clock.advance(1);
      const other = fx.peer ?? fx.store;
      const [a, b] = await Promise.all([fx.store.observe(id.deployment), other.observe(id.deployment)]);
      const transitions = [a!.transition, b!.transition].filter(Boolean);
      expect(transitions).toHaveLength(1);
      expect(transitions[0]).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN', epoch: 2 });
      expect(a!.record.state).toBe('HALF_OPEN');
      expect(await fx.store.openDeployments()).not.toContain(id.deployment);
    });

    it('grants one probe permit cluster-wide, never twice to the holder unless extending, and again after it expires', async () => {
      const id = dep();
      expect(await fx.store.acquireProbe(id.deployment, 'r1', 5_000)).toMatchObject({ granted: false, state: 'CLOSED' });
      for (let i = 0; i < 5; i++) await fail(id);
      expect(await fx.store.acquireProbe(id.deployment, 'r1', 5_000)).toMatchObject({ granted: false, state: 'OPEN' });
      fx.clock.advance(30_000);
      const first = await fx.store.acquireProbe(id.deployment, 'r1', 5_000);
      expect(first).toMatchObject({ granted: true, holderId: 'r1', expiresAt: fx.clock.now() + 5_000, state: 'HALF_OPEN' });
      expect(first.step?.transition).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN' });
      const other = fx.peer ?? fx.store;
      expect(await other.acquireProbe(id.deployment, 'r2', 5_000)).toMatchObject({ granted: false, holderId: 'r1', state: 'HALF_OPEN' });
      fx.clock.advance(1_000);
      // A permit is one probe call: the holder asking again (a retry of its probe) is refused…
      expect(await fx.store.acquireProbe(id.deployment, 'r1', 5_000)).toMatchObject({ granted: false, holderId: 'r1', expiresAt: fx.clock.now() + 4_000 });
      // …unless it extends the permit it holds (a long probe still running).
      expect(await fx.store.acquireProbe(id.deployment, 'r1', 5_000, true)).toMatchObject({ granted: true, expiresAt: fx.clock.now() + 5_000 });
      fx.clock.advance(5_000);
      const taken = await other.acquireProbe(id.deployment, 'r2', 5_000);
      expect(taken).toMatchObject({ granted: true, holderId: 'r2' });
      expect(taken.step).toBeUndefined();
    });

    it('probe success closes; probe failure re-opens', async () => {
      const a = dep();
      for (let i = 0; i < 5; i++) await fail(a);
      fx.clock.advance(30_000);
      await fx.store.acquireProbe(a.deployment, 'r1', 5_000);
      expect((await succeed(a)).transition).toMatchObject({ from: 'HALF_OPEN', to: 'CLOSED', reason: 'probe succeeded', epoch: 3 });
      // The permit ended with the transition.
      for (let i = 0; i < 5; i++) await fail(a);
      fx.clock.advance(30_000);
      // Re-opened within the healthy period: the second open lasts 60 s.
      expect(await fx.store.acquireProbe(a.deployment, 'r2', 5_000)).toMatchObject({ granted: false, state: 'OPEN' });
      fx.clock.advance(30_000);
      expect(await fx.store.acquireProbe(a.deployment, 'r2', 5_000)).toMatchObject({ granted: true, holderId: 'r2' });
      const reopened = await fail(a, 'TIMEOUT');
      expect(reopened.transition).toMatchObject({ from: 'HALF_OPEN', to: 'OPEN', reason: 'probe failed' });
      expect(reopened.record).toMatchObject({ reopenCount: 2, openUntil: fx.clock.now() + 120_000 });
      expect(effectiveState(reopened.record, fx.clock.now())).toBe('OPEN');
    });

    it('an outcome after open_until reports both transitions: OPEN→HALF_OPEN, then the decision', async () => {
      const id = dep();
      for (let i = 0; i < 5; i++) await fail(id);
      fx.clock.advance(45_000);
      const step = await succeed(id);
      expect(step.observed).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN', epoch: 2 });
      expect(step.transition).toMatchObject({ from: 'HALF_OPEN', to: 'CLOSED', epoch: 3 });
      for (let i = 0; i < 5; i++) await fail(id);
      fx.clock.advance(60_000); // re-opened soon after closing: 60 s
      const reopened = await fail(id);
      expect(reopened.observed).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN', epoch: 5 });
      expect(reopened.transition).toMatchObject({ from: 'HALF_OPEN', to: 'OPEN', reason: 'probe failed', epoch: 6 });
      const plain = await fail(id);
      expect(plain.observed).toBeUndefined();
    });

    it('forced states hold until released; forcing CLOSED clears history', async () => {
      const id = dep();
      const forced = await fx.store.force(id, { state: 'OPEN', release: false, reason: 'maintenance' });
      expect(forced.transition).toMatchObject({ from: 'CLOSED', to: 'OPEN', forced: true, reason: 'maintenance', openUntil: 0, epoch: 1 });
      expect(await fx.store.deployments()).toContain(id.deployment);
      for (let i = 0; i < 3; i++) await succeed(id);
      fx.clock.advance(600_000);
      expect((await fx.store.observe(id.deployment))!.record).toMatchObject({ state: 'OPEN', forced: true });
      // Same state again: nothing changes, no event.
      const again = await fx.store.force(id, { state: 'OPEN', release: false, reason: '' });
      expect(again.transition).toBeUndefined();
      expect(again.record.epoch).toBe(1);
      const closed = await fx.store.force(id, { state: 'CLOSED', release: false, reason: '' });
      expect(closed.transition).toMatchObject({ from: 'OPEN', to: 'CLOSED', forced: true, reason: 'operator override' });
      for (let i = 0; i < 10; i++) await fail(id);
      const released = await fx.store.force(id, { state: undefined, release: true, reason: '' });
      expect(released.transition).toBeUndefined();
      expect(released.record).toMatchObject({ state: 'CLOSED', forced: false, consecutiveFailures: 0, window: '', epoch: 3 });
      for (let i = 0; i < 5; i++) await fail(id);
      expect((await fx.store.observe(id.deployment))!.record.state).toBe('OPEN');
    });

    it('tracks latency EWMA, failure-rate window and lists deployments sorted', async () => {
      const id = dep();
      await succeed(id, 100);
      await succeed(id, 200);
      await fail(id, 'SERVER_ERROR');
      const step = await fx.store.observe(id.deployment);
      expect(step!.record.latencyEwmaMs).toBeCloseTo(120 + 0.2 * (50 - 120), 6);
      expect(windowStats(step!.record)).toEqual({ calls: 3, failures: 1, slow: 0 });
      expect(await fx.store.observe('never-seen')).toBeUndefined();
      const list = await fx.store.deployments();
      expect(list).toContain(id.deployment);
      expect([...list].sort()).toEqual(list);
    });

    describe('recordBatch: several outcomes of one deployment in one step', () => {
      type Input = { errorClass: OutcomeErrorClass | undefined; latencyMs: number; eventId?: string };
      const sequence = (prefix: string): Input[] => [
        ...['NETWORK', 'OVERLOADED', 'SERVER_ERROR', 'TIMEOUT'].map((c, i) => ({ errorClass: c as OutcomeErrorClass, latencyMs: 40 + i, eventId: `${prefix}-a${i}` })),
        { errorClass: undefined, latencyMs: 120, eventId: `${prefix}-b` },
        { errorClass: 'INVALID_REQUEST', latencyMs: 5 },
        ...[0, 1, 2, 3, 4, 5].map((i) => ({ errorClass: 'OVERLOADED' as const, latencyMs: 70, eventId: `${prefix}-c${i}` })),
        // Redelivered outcomes: counted once.
        { errorClass: 'OVERLOADED', latencyMs: 70, eventId: `${prefix}-c5` },
        { errorClass: 'OVERLOADED', latencyMs: 70, eventId: `${prefix}-a0` },
      ];
      const comparable = (r: { deployment: string }) => ({ ...r, deployment: 'x' });

      it('ends in the same state with the same transitions, each reported once, as recording one by one', async () => {
        const single = dep();
        const batched = dep();
        const one: Array<{ transition?: unknown; duplicate: boolean }> = [];
        for (const o of sequence('s')) one.push(await fx.store.record(single, o));
        const many = await fx.store.recordBatch(batched, sequence('s'));
        const strip = (s: { transition?: { deployment: string }; duplicate: boolean }) => ({
          transition: s.transition && comparable(s.transition),
          duplicate: s.duplicate,
        });
        expect(many.map(strip)).toEqual(one.map((s) => strip(s as never)));
        expect(many.filter((s) => s.transition).map((s) => [s.transition!.from, s.transition!.to])).toEqual([['CLOSED', 'OPEN']]);
        const a = (await fx.store.observe(single.deployment))!.record;
        const b = (await fx.store.observe(batched.deployment))!.record;
        expect(comparable(b)).toEqual(comparable(a));
        expect(await fx.store.openDeployments()).toEqual(expect.arrayContaining([single.deployment, batched.deployment]));
        // The batch's markers de-duplicate later single reports too (a redelivered single message).
        expect((await fx.store.record(batched, { errorClass: 'OVERLOADED', latencyMs: 1, eventId: 's-c0' })).duplicate).toBe(true);
      });

      it('reports a due OPEN→HALF_OPEN and the probe decision of one outcome; a failed probe reopens, the next half-open grants a new permit', async () => {
        const id = dep();
        for (let i = 0; i < 5; i++) await fail(id);
        fx.clock.advance(30_000);
        const [first, second] = await fx.store.recordBatch(id, [
          { errorClass: undefined, latencyMs: 10 },
          { errorClass: 'OVERLOADED', latencyMs: 10 },
        ]);
        expect(first!.observed).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN' });
        expect(first!.transition).toMatchObject({ from: 'HALF_OPEN', to: 'CLOSED' });
        expect(first!.record.state).toBe('CLOSED');
        expect(second!.transition).toBeUndefined();
        expect(second!.record).toMatchObject({ state: 'CLOSED', consecutiveFailures: 1 });

        for (let i = 0; i < 4; i++) await fail(id);
        fx.clock.advance((await fx.store.observe(id.deployment))!.record.openUntil - fx.clock.now());
        expect((await fx.store.acquireProbe(id.deployment, 'router-1', 600_000)).granted).toBe(true);
        const [probe] = await fx.store.recordBatch(id, [{ errorClass: 'OVERLOADED', latencyMs: 10 }]);
        expect(probe!.transition).toMatchObject({ from: 'HALF_OPEN', to: 'OPEN', reason: 'probe failed' });
        // The next half-open grants another holder (one permit at a time).
        fx.clock.advance(probe!.record.openUntil - fx.clock.now());
        expect((await fx.store.acquireProbe(id.deployment, 'router-2', 600_000)).granted).toBe(true);
      });
    });

    describe('with a tuned policy', () => {
      let tuned: HealthStoreFixture | undefined;
      afterEach(async () => {
        await tuned?.close();
        tuned = undefined;
      });
      const use = async (p: Partial<BreakerPolicy>) => (tuned = await factory({ ...policy, ...p }));

      it('failure rate opens only once the window holds the minimum calls (3 of 5 = 60 %)', async () => {
        const t = await use({ minimumCalls: 5 });
        const id = dep();
        const seq: Array<OutcomeErrorClass | undefined> = ['OVERLOADED', undefined, 'SERVER_ERROR', undefined];
        for (const cls of seq) expect((await t.store.record(id, { errorClass: cls, latencyMs: 10 })).transition).toBeUndefined();
        const step = await t.store.record(id, { errorClass: 'TIMEOUT', latencyMs: 10 });
        expect(step.transition).toMatchObject({ from: 'CLOSED', to: 'OPEN', reason: 'failure rate 60% over 5 calls in 60s', failureRate: 0.6 });
      });

      it('failures slide out of the time window', async () => {
        const t = await use({ minimumCalls: 4, consecutiveFailures: 100 });
        const id = dep();
        await t.store.record(id, { errorClass: 'NETWORK', latencyMs: 10 });
        await t.store.record(id, { errorClass: 'NETWORK', latencyMs: 10 });
        t.clock.advance(61_000);
        await t.store.record(id, { errorClass: undefined, latencyMs: 10 });
        await t.store.record(id, { errorClass: undefined, latencyMs: 10 });
        const step = await t.store.record(id, { errorClass: 'NETWORK', latencyMs: 10 });
        // 1 failure in the 3 calls of the last 60 s: below minimum and 33 %.
        expect(step.transition).toBeUndefined();
        expect(windowStats(step.record)).toEqual({ calls: 3, failures: 1, slow: 0 });
        const fourth = await t.store.record(id, { errorClass: 'NETWORK', latencyMs: 10 });
        expect(fourth.transition).toMatchObject({ to: 'OPEN', reason: 'failure rate 50% over 4 calls in 60s' });
      });

      it('slow calls over the per-deployment threshold open the circuit', async () => {
        const id = dep();
        const t = await use({ minimumCalls: 4, slowCallMs: 0, slowCallMsByDeployment: { [id.deployment]: 1_000 }, slowCallRateThreshold: 0.75 });
        const latencies = [1_500, 200, 2_000];
        for (const latencyMs of latencies) expect((await t.store.record(id, { errorClass: undefined, latencyMs })).transition).toBeUndefined();
        const step = await t.store.record(id, { errorClass: undefined, latencyMs: 1_001 });
        expect(step.transition).toMatchObject({ to: 'OPEN', reason: 'slow-call rate 75% (over 1000ms) over 4 calls in 60s' });
        // Another deployment without a threshold never counts slow calls.
        const other = dep();
        for (let i = 0; i < 10; i++) await t.store.record(other, { errorClass: undefined, latencyMs: 5_000 });
        expect(windowStats((await t.store.observe(other.deployment))!.record).slow).toBe(0);
      });

      it('grants exactly halfOpenProbes permits; that many successes close', async () => {
        const t = await use({ halfOpenProbes: 2 });
        const id = dep();
        for (let i = 0; i < 5; i++) await t.store.record(id, { errorClass: 'OVERLOADED', latencyMs: 10 });
        t.clock.advance(30_000);
        const other = t.peer ?? t.store;
        const grants = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((h, i) => (i % 2 ? other : t.store).acquireProbe(id.deployment, h, 5_000)));
        expect(grants.filter((g) => g.granted)).toHaveLength(2);
        expect(grants.filter((g) => g.step?.transition)).toHaveLength(1);
        expect((await t.store.record(id, { errorClass: undefined, latencyMs: 10 })).transition).toBeUndefined();
        expect((await t.store.record(id, { errorClass: undefined, latencyMs: 10 })).transition).toMatchObject({
          from: 'HALF_OPEN',
          to: 'CLOSED',
          reason: '2 probes succeeded',
        });
      });

      it('escalates 30 s → 60 s → 120 s up to the cap, and starts over after a healthy period', async () => {
        const t = await use({ maxOpenMs: 100_000, healthyResetMs: 300_000 });
        const id = dep();
        const failN = async (n: number) => {
          let last;
          for (let i = 0; i < n; i++) last = await t.store.record(id, { errorClass: 'OVERLOADED', latencyMs: 10 });
          return last!;
        };
        expect((await failN(5)).record.openUntil).toBe(t.clock.now() + 30_000);
        t.clock.advance(30_000);
        expect((await failN(1)).record).toMatchObject({ reopenCount: 1, openUntil: t.clock.now() + 60_000 });
        t.clock.advance(60_000);
        expect((await failN(1)).record).toMatchObject({ reopenCount: 2, openUntil: t.clock.now() + 100_000 });
        t.clock.advance(100_000);
        expect((await t.store.record(id, { errorClass: undefined, latencyMs: 10 })).transition).toMatchObject({ to: 'CLOSED' });
        t.clock.advance(300_000);
        const fresh = await failN(5);
        expect(fresh.transition).toMatchObject({ from: 'CLOSED', to: 'OPEN' });
        expect(fresh.record).toMatchObject({ reopenCount: 0, openUntil: t.clock.now() + 30_000 });
      });
    });
  });
}
