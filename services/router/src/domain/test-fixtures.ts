import type { DeploymentConfig } from '@switchyard/config';
import type { Candidate, Rng } from './candidates';

/** A deployment config with test defaults; only what a test cares about is passed. */
export function deployment(overrides: Partial<DeploymentConfig> = {}): DeploymentConfig {
  return {
    provider: 'openai',
    baseUrl: 'http://127.0.0.1:1/v1',
    model: 'gpt-4o-mini',
    apiKey: 'env:TEST_KEY',
    contextWindow: 128_000,
    timeoutMs: 30_000,
    firstTokenTimeoutMs: 10_000,
    idleTimeoutMs: 30_000,
    limits: {},
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 },
    ...overrides,
  };
}

export function candidate(name: string, overrides: Partial<DeploymentConfig> = {}, priority = 0, weight = 1): Candidate {
  return { name, deployment: deployment(overrides), priority, weight };
}

/** Replays fixed values (cycling), so weighted choices and jitter are predictable. */
export function fixedRng(...values: number[]): Rng {
  let i = 0;
  return () => values[i++ % values.length]!;
}
