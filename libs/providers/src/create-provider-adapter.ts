import { systemClock, type Clock } from '@switchyard/util';
import { createAnthropicAdapter } from './anthropic-adapter';
import { InvalidChatRequestError } from './errors';
import { createOpenAIAdapter } from './openai-adapter';
import { PROVIDER_KINDS, type DeploymentTarget, type ProviderAdapter } from './types';

export interface AdapterOptions {
  /** Source of "now" for rate-limit reset times; default systemClock. */
  clock?: Clock;
}

/**
 * One adapter per deployment, created once and reused: it owns one SDK
 * client, so connections are kept alive across calls. Throws
 * InvalidChatRequestError naming the deployment field when the config is bad.
 */
export function createProviderAdapter(deployment: DeploymentTarget, options: AdapterOptions = {}): ProviderAdapter {
  validateDeployment(deployment);
  const clock = options.clock ?? systemClock;
  return deployment.provider === 'anthropic' ? createAnthropicAdapter(deployment, clock) : createOpenAIAdapter(deployment, clock);
}

export function validateDeployment(d: DeploymentTarget): void {
  if (d === null || typeof d !== 'object') throw new InvalidChatRequestError('deployment', 'must be an object');
  const label = typeof d.name === 'string' && d.name ? `deployment "${d.name}"` : 'deployment';
  const nonEmpty = (field: keyof DeploymentTarget) => {
    const v = d[field];
    if (typeof v !== 'string' || v.trim().length === 0) throw new InvalidChatRequestError(`${label}.${field}`, 'must be a non-empty string');
  };
  nonEmpty('name');
  if (!PROVIDER_KINDS.includes(d.provider)) {
    throw new InvalidChatRequestError(`${label}.provider`, `must be one of ${PROVIDER_KINDS.join(', ')} (got ${JSON.stringify(d.provider)})`);
  }
  nonEmpty('baseUrl');
  let url: URL;
  try {
    url = new URL(d.baseUrl);
  } catch {
    throw new InvalidChatRequestError(`${label}.baseUrl`, `is not a valid URL: ${JSON.stringify(d.baseUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidChatRequestError(`${label}.baseUrl`, `must be http(s) (got ${url.protocol})`);
  }
  nonEmpty('model');
  nonEmpty('apiKey');
  if (d.provider === 'azure') nonEmpty('apiVersion');
  if (d.maxTokensParam !== undefined && d.maxTokensParam !== 'max_tokens' && d.maxTokensParam !== 'max_completion_tokens') {
    throw new InvalidChatRequestError(`${label}.maxTokensParam`, 'must be max_tokens or max_completion_tokens');
  }
  if (d.sdkTimeoutMs !== undefined && (!Number.isInteger(d.sdkTimeoutMs) || d.sdkTimeoutMs <= 0)) {
    throw new InvalidChatRequestError(`${label}.sdkTimeoutMs`, 'must be a positive integer');
  }
}
