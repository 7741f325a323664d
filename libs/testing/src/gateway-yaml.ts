/** gpt-4o-mini's list price, the one most tests bill at. */
export const CHEAP_PRICE = '{ inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }';

export interface SimDeploymentOptions {
  /** The deployment's `limits` as a YAML flow map, e.g. `{ rpm: 30, tpm: 3000 }`; none when omitted. */
  limits?: string;
  /** The deployment's `price` as a YAML flow map; default 1 / 2 USD per million input / output tokens. */
  price?: string;
  /** More lines for the deployment, each starting with a newline and four spaces. */
  extra?: string;
  /** The simulator's dialect to speak; default openai (its base URL ends in /v1, Anthropic's does not). */
  provider?: 'openai' | 'anthropic';
}

/**
 * One deployment (OpenAI unless `provider` says otherwise) of a gateway config pointed at a provider simulator,
 * as a test writes it under `deployments:` (`  name: ${simDeploymentYaml(...)}`):
 * the key comes from SIM_PROVIDER_KEY, which the test stacks set.
 */
export function simDeploymentYaml(sim: string, model: string, options: SimDeploymentOptions = {}): string {
  const limits = options.limits === undefined ? '' : `\n    limits: ${options.limits}`;
  const provider = options.provider ?? 'openai';
  return `
    provider: ${provider}
    baseUrl: ${provider === 'anthropic' ? sim : `${sim}/v1`}
    model: ${model}
    apiKey: env:SIM_PROVIDER_KEY${limits}
    price: ${options.price ?? '{ inputPerMillionUsd: 1, outputPerMillionUsd: 2 }'}${options.extra ?? ''}`;
}
