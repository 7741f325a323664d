import type { ProviderKind } from './types';

/** What a deployment can serve; declared per deployment in config (`deployments.<id>.capabilities`). */
export interface DeploymentCapabilities {
  /** Function tools (definitions, tool choice, tool-call turns in the conversation). */
  tools: boolean;
  /** Image parts in user messages. */
  images: boolean;
  /**
   * Native JSON-schema output (OpenAI response_format json_schema, Anthropic
   * output_config.format). Without it an Anthropic deployment still serves
   * json_schema through one forced tool; an OpenAI-family one cannot.
   */
  jsonSchema: boolean;
  /** Largest max_tokens the model accepts; a larger request is clamped to it. Unset: no known bound. */
  maxOutputTokens?: number;
}

/**
 * Defaults when config declares nothing: what the current models of each
 * hosted provider support. Anthropic's native structured output exists only
 * on recent models, so it must be declared. Self-hosted OpenAI-compatible
 * servers vary, so they are assumed to serve text only until declared.
 */
export const DEFAULT_CAPABILITIES: Readonly<Record<ProviderKind, DeploymentCapabilities>> = {
  openai: { tools: true, images: true, jsonSchema: true },
  azure: { tools: true, images: true, jsonSchema: true },
  anthropic: { tools: true, images: true, jsonSchema: false },
  'openai-compatible': { tools: false, images: false, jsonSchema: false },
};

/** The provider's defaults overridden by whatever the deployment declares. */
export function resolveCapabilities(provider: ProviderKind, declared: Partial<DeploymentCapabilities> = {}): DeploymentCapabilities {
  const out: DeploymentCapabilities = { ...DEFAULT_CAPABILITIES[provider] };
  for (const [k, v] of Object.entries(declared) as [keyof DeploymentCapabilities, never][]) if (v !== undefined) out[k] = v;
  return out;
}
