/* eslint-disable @typescript-eslint/no-require-imports -- the SDK is required lazily, see below */
type AnthropicSdk = typeof import('@anthropic-ai/sdk');

let loaded: AnthropicSdk | undefined;

/**
 * The Anthropic SDK, required when the first Anthropic client is built: a
 * process with no Anthropic deployment never loads it (about 4 MB of heap and
 * 12 MB of RSS in a fresh process, `node --expose-gc` requiring it alone, and
 * twice the heap at the router's old-generation peak).
 */
export function anthropicSdk(): AnthropicSdk {
  return (loaded ??= require('@anthropic-ai/sdk') as AnthropicSdk);
}

/**
 * The SDK if a client was built, else undefined: classifying an error must not
 * load it, and before the first client no error can be one of its classes.
 */
export function loadedAnthropicSdk(): AnthropicSdk | undefined {
  return loaded;
}
