/**
 * The neutral model every adapter translates to and from. The router, cache,
 * limiter and budget only ever see these shapes, so adding a provider means
 * writing one translation pair, not touching the call path.
 */

export type ProviderKind = 'openai' | 'azure' | 'anthropic' | 'openai-compatible';

export const PROVIDER_KINDS: readonly ProviderKind[] = ['openai', 'azure', 'anthropic', 'openai-compatible'];

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

/** Where an image comes from: a URL the provider fetches, or its bytes (base64) with their media type. */
export type ImageSource = { kind: 'url'; url: string } | { kind: 'base64'; mediaType: string; data: string };

export interface TextPart {
  type: 'text';
  text: string;
}

export interface ImagePart {
  type: 'image';
  source: ImageSource;
  /** OpenAI's `detail` hint; other providers ignore it. Default auto. */
  detail?: 'auto' | 'low' | 'high';
}

export type ContentPart = TextPart | ImagePart;

/** A call the assistant made; `arguments` is the JSON text exactly as the model produced it. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ChatMessage {
  role: ChatRole;
  /** A string is the text-only shorthand for one text part. */
  content: string | ContentPart[];
  /** Assistant turns: the tool calls the turn made, in order. */
  toolCalls?: ToolCall[];
  /** Tool turns: id of the call this message answers. */
  toolCallId?: string;
}

export interface ToolDefinition {
  name: string;
  description?: string;
  /** JSON Schema of the arguments (an object schema). */
  parameters: Record<string, unknown>;
  /** Ask the provider to enforce the schema; unset = provider default. */
  strict?: boolean;
}

/** 'auto' | 'none' | 'required' (at least one call) | one named function. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; strict?: boolean };

export interface ChatRequest {
  messages: ChatMessage[];
  /** Upper bound on generated tokens; required because budgets reserve against it. */
  maxTokens: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  /** Opaque end-user id forwarded for provider abuse monitoring (OpenAI `user`, Anthropic `metadata.user_id`). */
  user?: string;
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /** false forbids several calls in one turn; unset = provider default (allowed). */
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
  /** OpenAI `seed`; Anthropic has none (fitRequest drops it with a note). */
  seed?: number;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'other';

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
  /** Tool calls the model made (finishReason 'tool_calls'), in order; absent when none. */
  toolCalls?: ToolCall[];
  /** The model's refusal text (OpenAI `message.refusal`); absent when it did not refuse. */
  refusal?: string;
  /** The stop sequence that ended the answer, when the provider says which (Anthropic `stop_sequence`); absent otherwise. */
  stopSequence?: string;
  usage: Usage;
  /** The model the provider says served the call (may differ from the alias asked for). */
  model: string;
  /** The provider's id of this answer (OpenAI/Azure completion `id`, Anthropic message `id`): `gen_ai.response.id`. */
  responseId?: string;
  upstreamRequestId?: string;
  rateLimit?: RateLimitSnapshot;
}

/** A piece of a streamed tool call: the first piece of a call has id and name, later ones argument fragments. */
export interface ToolCallDelta {
  type: 'tool_call_delta';
  /** Position of the call in the turn, 0-based, dense in order of first appearance. */
  index: number;
  id?: string;
  name?: string;
  argumentsDelta: string;
}

export type StreamChunk =
  | { type: 'delta'; text: string }
  | ToolCallDelta
  | {
      type: 'end';
      finishReason: FinishReason;
      usage: Usage;
      /** The calls assembled from this stream's tool_call_delta chunks, in index order; absent when none. */
      toolCalls?: ToolCall[];
      refusal?: string;
      /** As ChatResponse.stopSequence. */
      stopSequence?: string;
      /**
       * Set when the upstream did not report usage in the stream (some
       * OpenAI-compatible servers ignore `stream_options.include_usage`) and the
       * figures were counted locally with @switchyard/tokens instead.
       */
      usageEstimated?: true;
      /** The provider's id of the streamed answer (OpenAI/Azure chunk `id`, Anthropic message_start `message.id`). */
      responseId?: string;
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
  /** Custom fetch (e.g. instrumented, or the global fetch). Defaults to providerFetch(): node:http(s) over keep-alive agents shared by every deployment. */
  fetch?: typeof fetch;
  /**
   * The deployment serves JSON-schema output natively (OpenAI response_format
   * json_schema, Anthropic output_config.format). Anthropic only: when false a
   * json_schema request is served with one forced tool whose input is the
   * schema. Default: true for openai/azure, false for anthropic/openai-compatible.
   */
  nativeJsonSchema?: boolean;
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
