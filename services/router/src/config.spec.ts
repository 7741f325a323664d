import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config';

const YAML = `
deployments:
  d1:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:SIM_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
routes: {}
tenants: {}
`;

describe('router config: peer addresses', () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'router-config-'));
    writeFileSync(join(dir, 'switchyard.yaml'), YAML);
    env = { SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'), SIM_KEY: 'k' };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes one address, a list of replicas or a DNS name for every peer', () => {
    const config = loadConfig({
      ...env,
      BUDGET_ADDR: '10.0.0.1:50054,10.0.0.2:50054',
      LIMITER_ADDR: 'dns:///limiter.internal:50052',
      CACHE_ADDR: 'cache:50055',
    });
    expect([config.budgetAddr, config.limiterAddr, config.cacheAddr, config.breakerAddr]).toEqual([
      '10.0.0.1:50054,10.0.0.2:50054',
      'dns:///limiter.internal:50052',
      'cache:50055',
      '127.0.0.1:50053',
    ]);
    expect(config.settleRetryWindowMs).toBe(60_000);
  });

  it('refuses to start with a list it cannot balance, naming the variable and the entry', () => {
    const load = () => loadConfig({ ...env, BUDGET_ADDR: 'budget-1:50054,budget-2:50054', CACHE_ADDR: '10.0.0.1:1,' });
    expect(load).toThrow(/CACHE_ADDR: address "10.0.0.1:1,": empty entry in the list/);
    expect(load).toThrow(/BUDGET_ADDR: address "budget-1:50054,budget-2:50054": list entry "budget-1:50054" is not an IP literal.*"dns:\/\/\/budget:50054"/);
  });
});
