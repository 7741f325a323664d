import { activeOutage, createScenarioState, drawFault, shouldRetryHeader } from './faults';
import { resolveDeployment, validateScenario } from './scenario';

const scenario = (seed: number) =>
  validateScenario({
    seed,
    deployments: {
      a: { faults: { rate_limit: 0.2, server_error: 0.1 } },
      b: { faults: { overloaded: 0.5 } },
    },
  });

function fates(seed: number, name: string, n: number) {
  const rt = createScenarioState(scenario(seed), 0).deployment(name)!;
  return Array.from({ length: n }, () => drawFault(rt));
}

describe('drawFault', () => {
  it('gives the same sequence for the same seed, and a different one for another seed', () => {
    expect(fates(7, 'a', 50)).toEqual(fates(7, 'a', 50));
    expect(fates(7, 'a', 50)).not.toEqual(fates(8, 'a', 50));
  });

  it('keeps each deployment on its own stream, unaffected by traffic to others', () => {
    const state = createScenarioState(scenario(7), 0);
    const a = state.deployment('a')!;
    const b = state.deployment('b')!;
    const interleaved = [];
    for (let i = 0; i < 50; i++) {
      drawFault(b);
      interleaved.push(drawFault(a));
    }
    expect(interleaved).toEqual(fates(7, 'a', 50));
  });

  it('injects each kind at roughly its configured rate', () => {
    const all = fates(3, 'a', 20_000);
    const share = (k: string) => all.filter((f) => f === k).length / all.length;
    expect(share('rate_limit')).toBeGreaterThan(0.18);
    expect(share('rate_limit')).toBeLessThan(0.22);
    expect(share('server_error')).toBeGreaterThan(0.085);
    expect(share('server_error')).toBeLessThan(0.115);
  });

  it('rewinds to the first draw after reseed()', () => {
    const state = createScenarioState(scenario(7), 0);
    const first = Array.from({ length: 20 }, () => drawFault(state.deployment('a')!));
    state.reseed();
    expect(Array.from({ length: 20 }, () => drawFault(state.deployment('a')!))).toEqual(first);
  });
});

describe('createScenarioState', () => {
  it('refuses unlisted deployments only under strictModels', () => {
    expect(createScenarioState(validateScenario({ deployments: { a: {} } }), 0).deployment('zzz')).not.toBeNull();
    expect(createScenarioState(validateScenario({ strictModels: true, deployments: { a: {} } }), 0).deployment('zzz')).toBeNull();
  });
});

describe('activeOutage', () => {
  it('applies relative windows from scenario load and absolute ISO windows as given', () => {
    const s = validateScenario({
      deployments: {
        a: {
          outages: [
            { from: 1000, to: 2000, status: 529 },
            { from: '2030-01-01T00:00:00Z', to: '2030-01-01T00:01:00Z', kind: 'server_error' },
          ],
        },
      },
    });
    const rt = createScenarioState(s, 10_000).deployment('a')!;
    expect(activeOutage(rt, 10_999)).toBeNull();
    expect(activeOutage(rt, 11_000)).toBe('overloaded');
    expect(activeOutage(rt, 12_000)).toBeNull();
    expect(activeOutage(rt, Date.parse('2030-01-01T00:00:30Z'))).toBe('server_error');
  });
});

describe('shouldRetryHeader', () => {
  it('is absent unless configured, global or per kind', () => {
    const base = resolveDeployment(validateScenario({}), 'x');
    expect(shouldRetryHeader(base, 'rate_limit')).toBeUndefined();
    expect(shouldRetryHeader({ ...base, shouldRetry: false }, 'rate_limit')).toBe('false');
    const per = { ...base, shouldRetry: { overloaded: true } };
    expect(shouldRetryHeader(per, 'overloaded')).toBe('true');
    expect(shouldRetryHeader(per, 'rate_limit')).toBeUndefined();
  });
});
