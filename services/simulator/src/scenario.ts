import { parse as parseYaml } from 'yaml';
import { round, scenarioProblems, scenarioSchema, sumRates } from './scenario-schema';
import { DEPLOYMENT_DEFAULTS, type DeploymentSettings, type Scenario } from './scenario-types';

/**
 * A scenario describes how the simulated providers behave: per deployment,
 * limits, latency, injected faults and outages. It is validated once when
 * loaded (never per request) and then resolved into flat per-deployment
 * settings the hot path reads directly.
 */

export * from './scenario-types';

/**
 * Used when no --scenario is given: the common deployments, no faults, no
 * latency, and limits high enough that only a load test notices them (so the
 * rate-limit headers are always present, as with the real providers).
 */
export const BUILT_IN_SCENARIO: Scenario = {
  seed: 1,
  strictModels: false,
  apiKeys: null,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: {
    'gpt-4o': { contextWindow: 128_000 },
    'gpt-4o-mini': { contextWindow: 128_000 },
    'claude-sonnet-4-6': { contextWindow: 200_000 },
    'claude-haiku-4-5': { contextWindow: 200_000 },
  },
};

export class ScenarioError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ScenarioError';
  }
}

/** Parses YAML (or JSON, a YAML subset) scenario text and validates it. */
export function parseScenarioText(text: string): Scenario {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ScenarioError([`scenario: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  return validateScenario(raw ?? {});
}

/** Validates an untrusted scenario object; throws ScenarioError listing every problem with its key path. */
export function validateScenario(raw: unknown): Scenario {
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) throw new ScenarioError(scenarioProblems(parsed.error));
  const scenario = parsed.data as Scenario;
  // Rates are checked again after merging, because defaults + overrides may together exceed 1.
  const problems: string[] = [];
  for (const name of Object.keys(scenario.deployments)) {
    const sum = sumRates(resolveDeployment(scenario, name).faults);
    if (sum > 1 + 1e-9) problems.push(`deployments.${name}.faults: rates (with defaults) must sum to at most 1, got ${round(sum)}`);
  }
  if (problems.length > 0) throw new ScenarioError(problems);
  return scenario;
}

/** Merges built-in defaults, the scenario's `defaults`, and the deployment's own block (later wins, per key). */
export function resolveDeployment(scenario: Scenario, name: string): DeploymentSettings {
  const layers = [scenario.defaults, scenario.deployments[name] ?? {}];
  const out: DeploymentSettings = {
    ...DEPLOYMENT_DEFAULTS,
    limits: { ...DEPLOYMENT_DEFAULTS.limits },
    reply: { ...DEPLOYMENT_DEFAULTS.reply },
    latency: { ...DEPLOYMENT_DEFAULTS.latency },
    faults: {},
  };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer) as [keyof DeploymentSettings, unknown][]) {
      if (key === 'limits' || key === 'reply' || key === 'latency' || key === 'faults') {
        Object.assign(out[key], value);
      } else if (key === 'shouldRetry' && isPlainObject(value) && isPlainObject(out.shouldRetry)) {
        out.shouldRetry = { ...out.shouldRetry, ...value };
      } else {
        (out as unknown as Record<string, unknown>)[key] = value;
      }
    }
  }
  if (out.reply.maxTokens < out.reply.minTokens) out.reply.maxTokens = out.reply.minTokens;
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}
