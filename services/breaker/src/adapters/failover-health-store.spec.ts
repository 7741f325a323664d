import { ManualClock } from '@switchyard/util';
import { DEFAULT_POLICY } from '../domain/circuit';
import type { HealthStore } from '../domain/health-store';
import { createFailoverHealthStore } from './failover-health-store';
import { createMemoryHealthStore } from './memory-health-store';

const id = { deployment: 'gpt', provider: 'openai', model: 'gpt-4o' };
const failure = { errorClass: 'OVERLOADED' as const, latencyMs: 50 };
const policy = { ...DEFAULT_POLICY, consecutiveFailures: 3 };

function setup() {
  const clock = new ManualClock(1_700_000_000_000);
  const shared = createMemoryHealthStore({ policy, clock });
  let down = false;
  let sharedCalls = 0;
  let scriptBroken = false;
  const unreachable = () => Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
  const badScript = () => Promise.reject(Object.assign(new Error('ERR Error running script'), { name: 'ReplyError' }));
  // The shared store, or a connection error while `down`.
  const flaky = new Proxy(shared, {
    get: (target, prop: keyof HealthStore) => {
      if (prop === 'close') return target[prop];
      sharedCalls += 1;
      if (scriptBroken) return badScript;
      return down ? unreachable : target[prop];
    },
  });
  const modes: string[] = [];
  const locals: HealthStore[] = [];
  const store = createFailoverHealthStore({
    shared: flaky,
    createLocal: () => {
      const local = createMemoryHealthStore({ policy, clock });
      locals.push(local);
      return local;
    },
    retryAfterMs: 500,
    now: () => clock.now(),
    onModeChange: (m) => modes.push(m),
  });
  return {
    store,
    clock,
    modes,
    locals,
    shared,
    setDown: (v: boolean) => (down = v),
    breakScript: () => (scriptBroken = true),
    sharedCalls: () => sharedCalls,
  };
}

describe('failover health store', () => {
  it('counts in memory while Redis is unreachable, so a failing deployment still opens, and says so once', async () => {
    const { store, setDown, modes, shared } = setup();
    setDown(true);
    const steps = [];
    for (let i = 0; i < 3; i++) steps.push(await store.record(id, { ...failure, eventId: `e${i}` }));
    expect(steps[2]!.transition).toMatchObject({ from: 'CLOSED', to: 'OPEN' });
    expect(store.mode()).toBe('local');
    expect(modes).toEqual(['local']);
    expect((await store.observe('gpt'))?.record.state).toBe('OPEN');
    expect(await store.openDeployments()).toEqual(['gpt']);
    // Nothing reached the shared store.
    expect(await shared.observe('gpt')).toBeUndefined();
  });

  it('does not try Redis again before retryAfterMs, then returns to it: Redis is the truth again', async () => {
    const { store, setDown, clock, modes, shared, sharedCalls } = setup();
    await store.record(id, { ...failure, eventId: 'before' });
    setDown(true);
    await store.record(id, { ...failure, eventId: 'during-1' });
    const tried = sharedCalls();
    setDown(false);
    await store.record(id, { ...failure, eventId: 'during-2' });
    expect(sharedCalls()).toBe(tried);
    clock.advance(500);
    const back = await store.record(id, { ...failure, eventId: 'after' });
    expect(modes).toEqual(['local', 'shared']);
    expect(store.mode()).toBe('shared');
    // Redis saw 'before' and 'after' only: two consecutive failures, still CLOSED.
    expect(back.record).toMatchObject({ state: 'CLOSED', consecutiveFailures: 2 });
    expect((await shared.observe('gpt'))?.record.consecutiveFailures).toBe(2);
  });

  it('a half-open probe permit and an epoch lift are served locally during the outage', async () => {
    const { store, setDown, clock } = setup();
    setDown(true);
    for (let i = 0; i < 3; i++) await store.record(id, { ...failure, eventId: `p${i}` });
    const lifted = await store.raiseEpoch('gpt', 9);
    expect(lifted?.record.epoch).toBe(10);
    clock.advance(policy.openMs);
    expect(await store.acquireProbe('gpt', 'router-a', 1_000)).toMatchObject({ granted: true, state: 'HALF_OPEN' });
    expect(await store.acquireProbe('gpt', 'router-b', 1_000)).toMatchObject({ granted: false, holderId: 'router-a' });
  });

  it('each outage starts from a fresh local store: one outage\'s counts are not the next one\'s', async () => {
    const { store, setDown, clock, locals } = setup();
    setDown(true);
    for (let i = 0; i < 2; i++) await store.record(id, { ...failure, eventId: `first-${i}` });
    setDown(false);
    clock.advance(500);
    await store.deployments();
    setDown(true);
    const step = await store.record(id, { ...failure, eventId: 'second-0' });
    expect(locals).toHaveLength(2);
    expect(step.record).toMatchObject({ state: 'CLOSED', consecutiveFailures: 1 });
  });

  it('a script error is a bug, not an outage: it is thrown, and the store stays shared', async () => {
    const { store, breakScript, modes } = setup();
    breakScript();
    await expect(store.record(id, { ...failure, eventId: 'x' })).rejects.toThrow('ERR Error running script');
    expect(store.mode()).toBe('shared');
    expect(modes).toEqual([]);
  });
});
