import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@switchyard/util';
import { createMemoryHealthStore } from './adapters/memory-health-store';
import { loadConfig as load } from './config';

/** A loopback bind needs no internal token. */
const loadConfig = (env: Record<string, string>) => load({ GRPC_HOST: '127.0.0.1', ...env });

const deployment = (id: string, breaker = '') => `
  ${id}:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }${breaker ? `\n    breaker: ${breaker}` : ''}`;

function configFile(yaml: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'breaker-config-')), 'switchyard.yaml');
  writeFileSync(path, yaml);
  return path;
}

describe('breaker policy from one source', () => {
  it('without a config file, takes the legacy BREAKER_* variables', () => {
    const c = loadConfig({ BREAKER_CONSECUTIVE_FAILURES: '3', BREAKER_FAILURE_RATE_PERCENT: '40', BREAKER_SLOW_CALL_MS_BY_DEPLOYMENT: 'east=800' });
    expect(c.policy).toMatchObject({ consecutiveFailures: 3, openMs: 30_000, failureRateThreshold: 0.4, byDeployment: { east: { slowCallMs: 800 } } });
    expect(c.probeTtlMs).toBe(30_000);
  });

  it('takes each key from the deployment, else defaults.breaker, else the variable, else the default', () => {
    const path = configFile(`
deployments:${deployment('east', '{ openMs: 5000, halfOpenProbes: 3, probeTtlMs: 7000 }')}${deployment('west')}
routes: {}
tenants: {}
defaults:
  breaker: { failureRatePercent: 25, windowMs: 10000, probeTtlMs: 9000 }
`);
    const c = loadConfig({
      SWITCHYARD_CONFIG: path,
      OPENAI_API_KEY: 'x',
      // The file always sets these two (schema defaults 5 / 30000): the variables lose.
      BREAKER_CONSECUTIVE_FAILURES: '1',
      BREAKER_OPEN_MS: '1',
      // The file sets this one: the variable loses.
      BREAKER_FAILURE_RATE_PERCENT: '90',
      // The file is silent: the variable applies.
      BREAKER_MAX_OPEN_MS: '4000',
    });
    expect(c.policy).toEqual({
      consecutiveFailures: 5,
      openMs: 30_000,
      failureRateThreshold: 0.25,
      windowMs: 10_000,
      minimumCalls: 20,
      slowCallMs: 0,
      slowCallRateThreshold: 1,
      maxOpenMs: 4_000,
      healthyResetMs: 300_000,
      halfOpenProbes: 1,
      byDeployment: { east: { openMs: 5_000, halfOpenProbes: 3 } },
    });
    expect(c.probeTtlMs).toBe(9_000);
    expect(c.probeTtlMsByDeployment).toEqual({ east: 7_000 });
  });

  it('rejects a breaker key the schema does not know, naming it', () => {
    const path = configFile(`
deployments:${deployment('east', '{ openMS: 5000 }')}
routes: {}
tenants: {}
`);
    expect(() => loadConfig({ SWITCHYARD_CONFIG: path, OPENAI_API_KEY: 'x' })).toThrow(/deployments\.east\.breaker/);
  });

  it('runs each deployment’s circuit under its own settings', async () => {
    const store = createMemoryHealthStore({
      clock: new ManualClock(1_000_000),
      policy: { ...loadConfig({}).policy, byDeployment: { fragile: { consecutiveFailures: 2 } } },
    });
    const fail = { errorClass: 'SERVER_ERROR' as const, latencyMs: 10 };
    const id = (deployment: string) => ({ deployment, provider: 'openai', model: 'm' });
    for (let i = 0; i < 2; i++) {
      await store.record(id('fragile'), fail);
      await store.record(id('sturdy'), fail);
    }
    expect((await store.observe('fragile'))?.record.state).toBe('OPEN');
    expect((await store.observe('sturdy'))?.record.state).toBe('CLOSED');
  });
});
