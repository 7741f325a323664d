import { BUILT_IN_SCENARIO, parseScenarioText, resolveDeployment, ScenarioError, validateScenario } from './scenario';

function problems(raw: unknown): string[] {
  try {
    validateScenario(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as ScenarioError).problems;
  }
  throw new Error('expected the scenario to be rejected');
}

describe('validateScenario', () => {
  it('accepts the built-in scenario', () => {
    expect(validateScenario(BUILT_IN_SCENARIO)).toEqual(BUILT_IN_SCENARIO);
  });

  it.each([
    [{ deployments: { 'gpt-4o': { faults: { rate_limit: 1.5 } } } }, 'deployments.gpt-4o.faults.rate_limit: must be between 0 and 1, got 1.5'],
    [{ deployments: { 'gpt-4o': { faults: { rate_limit: 0.6, server_error: 0.6 } } } }, 'deployments.gpt-4o.faults: rates must sum to at most 1, got 1.2'],
    [{ deployments: { d: { faults: { teapot: 0.1 } } } }, 'deployments.d.faults.teapot: unknown fault kind'],
    [{ deployments: { d: { contextWindow: 'big' } } }, 'deployments.d.contextWindow: must be an integer, got "big"'],
    [{ deployments: { d: { latncy: {} } } }, 'deployments.d.latncy: unknown key'],
    [{ deployments: { d: { latency: { firstToken: -5 } } } }, 'deployments.d.latency.firstToken: must be ≥ 0 ms, got -5'],
    [{ deployments: { d: { latency: { perToken: { uniform: { min: 10, max: 5 } } } } } }, 'deployments.d.latency.perToken.uniform.max: must be ≥ min (10), got 5'],
    [{ deployments: { d: { latency: { perToken: { lognormal: { p50: 0, p99: 5 } } } } } }, 'deployments.d.latency.perToken.lognormal.p50: must be > 0, got 0'],
    [{ deployments: { d: { outages: [{ from: 5000, to: 1000 }] } } }, 'deployments.d.outages[0].to: must be after from (5000), got 1000'],
    [{ deployments: { d: { outages: [{ from: 'yesterday', to: 1000 }] } } }, 'deployments.d.outages[0].from: must be milliseconds since scenario load'],
    [{ deployments: { d: { outages: [{ from: 0, to: 10, status: 418 }] } } }, 'deployments.d.outages[0].status: must be one of'],
    [{ deployments: { d: { outages: [{ to: 10 }] } } }, 'deployments.d.outages[0].from: required'],
    [{ deployments: { d: { limits: { rpm: 0 } } } }, 'deployments.d.limits.rpm: must be ≥ 1, got 0'],
    [{ deployments: { d: { cutAfterChunks: -1 } } }, 'deployments.d.cutAfterChunks: must be ≥ 0, got -1'],
    [{ deployments: { d: { shouldRetry: 'yes' } } }, 'deployments.d.shouldRetry: must be true, false, or a mapping'],
    [{ seed: 1.5 }, 'seed: must be an integer, got 1.5'],
    [{ strict: true }, 'strict: unknown key'],
    [{ defaults: { faults: { overloaded: -0.1 } } }, 'defaults.faults.overloaded: must be between 0 and 1, got -0.1'],
  ])('rejects %j naming the key', (raw, message) => {
    expect(problems(raw).join('\n')).toContain(message);
  });

  it('checks the rate sum after merging defaults into a deployment', () => {
    expect(problems({ defaults: { faults: { server_error: 0.7 } }, deployments: { d: { faults: { rate_limit: 0.5 } } } })).toEqual([
      'deployments.d.faults: rates (with defaults) must sum to at most 1, got 1.2',
    ]);
  });

  it('lists every problem, not just the first', () => {
    expect(problems({ seed: 'x', deployments: { d: { contextWindow: 0, faults: { hang: 2 } } } })).toHaveLength(3);
  });
});

describe('parseScenarioText', () => {
  it('reads YAML and JSON', () => {
    const yaml = parseScenarioText('seed: 9\ndeployments:\n  gpt-4o:\n    latency: { firstToken: 5, perToken: { uniform: { min: 1, max: 2 } } }\n');
    expect(yaml.seed).toBe(9);
    expect(parseScenarioText('{"strictModels": true}').strictModels).toBe(true);
    expect(() => parseScenarioText('seed: [')).toThrow(/not valid YAML/);
  });
});

describe('resolveDeployment', () => {
  it('layers built-in defaults, scenario defaults and the deployment block', () => {
    const s = validateScenario({
      defaults: { limits: { rpm: 100, tpm: 1000 }, faults: { server_error: 0.1 }, latency: { firstToken: 50 } },
      deployments: { d: { limits: { tpm: 5000 }, faults: { rate_limit: 0.2 } } },
    });
    const d = resolveDeployment(s, 'd');
    expect(d.limits).toEqual({ rpm: 100, tpm: 5000, windowMs: 60_000 });
    expect(d.faults).toEqual({ server_error: 0.1, rate_limit: 0.2 });
    expect(d.latency.firstToken).toEqual({ fixed: 50 });
    expect(d.latency.perToken).toEqual({ fixed: 0 });
    expect(d.contextWindow).toBe(128_000);
    expect(resolveDeployment(s, 'unlisted').limits).toEqual({ rpm: 100, tpm: 1000, windowMs: 60_000 });
  });
});

describe('validateScenario, where a key accepts more than one shape', () => {
  it.each([
    [{ deployments: { d: { latency: { firstToken: { uniform: { min: 1 } } } } } }, 'deployments.d.latency.firstToken.uniform.max: required'],
    [{ deployments: { d: { latency: { firstToken: { uniform: 5 } } } } }, 'deployments.d.latency.firstToken.uniform: must be a mapping with min, max, got 5'],
    [{ deployments: { d: { latency: { firstToken: {} } } } }, 'deployments.d.latency.firstToken: must be a number of ms or exactly one of'],
    [{ deployments: { d: { shouldRetry: { rate_limit: 'y' } } } }, 'deployments.d.shouldRetry.rate_limit: must be true or false, got "y"'],
    [{ deployments: { d: { outages: [{ from: 0, to: 10, kind: 'hang', status: 503 }] } } }, 'deployments.d.outages[0]: give kind or status, not both'],
  ])('names the entry inside the shape that matched: %j', (raw, message) => {
    expect(problems(raw)).toEqual([expect.stringContaining(message)]);
  });

  it('keeps fault kinds in the order given (the fault dice walk them in that order)', () => {
    const s = validateScenario({ deployments: { d: { faults: { server_error: 0.1, rate_limit: 0.2, hang: 0.1 } } } });
    expect(Object.keys(s.deployments.d!.faults!)).toEqual(['server_error', 'rate_limit', 'hang']);
  });
});
