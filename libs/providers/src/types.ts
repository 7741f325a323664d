/**
 * The neutral model every adapter translates to and from. The router, cache,
 * limiter and budget only ever see these shapes, so adding a provider means
 * writing one translation pair, not touching the call path.
 */

export type ProviderKind = 'openai' | 'azure' | 'anthropic' | 'openai-compatible';

export const PROVIDER_KINDS: readonly ProviderKind[] = ['openai', 'azure', 'anthropic', 'openai-compatible'];

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatRequest {
  messages: ChatMessage[];
  /** Upper bound on generated tokens; required because budgets reserve against it. */
  maxTokens: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  /** Opaque end-user id forwarded for provider abuse monitoring (OpenAI `user`, Anthropic `metadata.user_id`). */
  user?: string;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'other';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** One rate-limit dimension as announced by the provider. Providers send subsets (Azure: remaining only). */
export interface RateLimitBucket {
  limit?: number;
  remaining?: number;
  /** Epoch milliseconds at which the bucket is full again. */
  resetAt?: number;
}

export interface IgnoredHeader {
  header: string;
  reason: string;
}

export interface RateLimitSnapshot {
  requests?: RateLimitBucket;
  tokens?: RateLimitBucket;
  inputTokens?: RateLimitBucket;
  outputTokens?: RateLimitBucket;
  retryAfterMs?: number;
  /** Headers that were present but unusable, with why; so the limiter can count them instead of guessing. */
  ignored: IgnoredHeader[];
}

export interface ChatResponse {
  content: string;
  finishReason: FinishReason;
  usage: Usage;
  /** The model the provider says served the call (may differ from the alias asked for). */
  model: string;
  upstreamRequestId?: string;
  rateLimit?: RateLimitSnapshot;
}

export type StreamChunk =
  | { type: 'delta'; text: string }
  | {
      type: 'end';
      finishReason: FinishReason;
      usage: Usage;
      /**
       * Set when the upstream did not report usage in the stream (some
       * OpenAI-compatible servers ignore `stream_options.include_usage`) and the
       * figures were counted locally with @switchyard/tokens instead.
       */
      usageEstimated?: true;
      upstreamRequestId?: string;
      rateLimit?: RateLimitSnapshot;
    };

/** Which OpenAI request field carries the output bound; see README "max_tokens". */
export type MaxTokensParam = 'max_tokens' | 'max_completion_tokens';

export interface DeploymentTarget {
  /** Our name for the deployment (config key); used in error messages. */
  name: string;
  provider: ProviderKind;
  /**
   * Passed to the SDK as-is. openai / openai-compatible: the API root including
   * `/v1` (e.g. `https://api.openai.com/v1`). azure: the resource endpoint
   * (`https://res.openai.azure.com`; `/openai` is appended by the SDK unless
   * already present). anthropic: the host root (`https://api.anthropic.com`).
   */
  baseUrl: string;
  /** Upstream model id, or the Azure deployment name. */
  model: string;
  apiKey: string;
  /** Required for azure (`api-version` query parameter). */
  apiVersion?: string;
  /** OpenAI-family only; default max_completion_tokens for openai/azure, max_tokens for openai-compatible. */
  maxTokensParam?: MaxTokensParam;
  /**
   * The SDK's own timeout. Our AbortSignal-based timeouts are what actually
   * bound an attempt; this is only a backstop, so it defaults high (10 min).
   */
  sdkTimeoutMs?: number;
  /** Custom fetch (e.g. instrumented or with a specific dispatcher). Defaults to the global fetch. */
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** The caller's cancellation (gRPC deadline / client gone). An abort reason that is a TimeoutAbort classifies as TIMEOUT. */
  signal?: AbortSignal;
  /** Whole-attempt bound (headers + body + whole stream). */
  timeoutMs?: number;
  /** Streams: bound from request start to the first content delta. */
  firstTokenTimeoutMs?: number;
  /** Streams: longest silence allowed between upstream events once the stream is open. */
  idleTimeoutMs?: number;
}

export interface ProviderAdapter {
  readonly name: string;
  readonly provider: ProviderKind;
  readonly model: string;
  /** Resolves with the answer or rejects with ProviderError (provider failure) or CancelledError (caller cancelled). */
  complete(req: ChatRequest, options?: CallOptions): Promise<ChatResponse>;
  /**
   * Yields deltas then exactly one `end` chunk; any failure is thrown as
   * ProviderError (STREAM_INTERRUPTED once a delta has been yielded), so an
   * incomplete stream can never look like a clean end.
   */
  stream(req: ChatRequest, options?: CallOptions): AsyncIterable<StreamChunk>;
}
