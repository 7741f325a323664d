import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import { InvalidChatRequestError } from './errors';
import { validateChatRequest } from './validate';
import type { ChatRequest, ChatResponse, FinishReason, MaxTokensParam, ProviderKind } from './types';

export interface OpenAIParamsOptions {
  /** Upstream model id (openai / openai-compatible) or Azure deployment name. */
  model: string;
  /** Which field carries maxTokens; see defaultMaxTokensParam. */
  maxTokensParam?: MaxTokensParam;
  /** Used only for provider-specific validation; default 'openai'. */
  provider?: ProviderKind;
}

/**
 * `max_completion_tokens` is the current OpenAI field (`max_tokens` is
 * deprecated and rejected by reasoning models); Azure accepts it from API
 * version 2024-09-01-preview on. Self-hosted OpenAI-compatible servers (vLLM,
 * Ollama, llama.cpp) have long accepted `max_tokens` but not all accept the
 * newer name, so they get `max_tokens`. Per-deployment override exists.
 */
export function defaultMaxTokensParam(provider: ProviderKind): MaxTokensParam {
  return provider === 'openai-compatible' ? 'max_tokens' : 'max_completion_tokens';
}

export function toOpenAIParams(req: ChatRequest, opts: OpenAIParamsOptions & { stream: true }): ChatCompletionCreateParamsStreaming;
export function toOpenAIParams(req: ChatRequest, opts: OpenAIParamsOptions & { stream?: false }): ChatCompletionCreateParamsNonStreaming;
/**
 * Neutral request → Chat Completions body. Only fields the caller set are
 * sent, so provider defaults stay provider defaults. Streams always ask for
 * usage (`stream_options.include_usage`), because limiter settlement and cost
 * need real token counts.
 */
export function toOpenAIParams(
  req: ChatRequest,
  opts: OpenAIParamsOptions & { stream?: boolean },
): ChatCompletionCreateParamsNonStreaming | ChatCompletionCreateParamsStreaming {
  const provider = opts.provider ?? 'openai';
  validateChatRequest(req, provider);
  if (typeof opts.model !== 'string' || opts.model.length === 0) throw new InvalidChatRequestError('model', 'must be a non-empty string');
  const params: Record<string, unknown> = {
    model: opts.model,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
  };
  params[opts.maxTokensParam ?? defaultMaxTokensParam(provider)] = req.maxTokens;
  if (req.temperature !== undefined) params['temperature'] = req.temperature;
  if (req.topP !== undefined) params['top_p'] = req.topP;
  if (req.stop !== undefined && req.stop.length > 0) params['stop'] = [...req.stop];
  if (req.user !== undefined) params['user'] = req.user;
  if (opts.stream) {
    params['stream'] = true;
    params['stream_options'] = { include_usage: true };
  }
  return params as unknown as ChatCompletionCreateParamsNonStreaming | ChatCompletionCreateParamsStreaming;
}

/** OpenAI finish_reason → neutral. Tool/function calls are not part of the neutral model, hence 'other'. */
export function fromOpenAIFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'stop':
      return 'stop';
    case 'length':
      return 'length';
    case 'content_filter':
      return 'content_filter';
    default:
      return 'other';
  }
}

export interface ResponseMeta {
  upstreamRequestId?: string;
  rateLimit?: ChatResponse['rateLimit'];
}

/** Chat Completions body → neutral response (first choice; we never ask for n > 1). */
export function fromOpenAIResponse(completion: ChatCompletion, meta: ResponseMeta = {}): ChatResponse {
  const choice = completion.choices?.[0];
  const response: ChatResponse = {
    content: choice?.message?.content ?? '',
    finishReason: fromOpenAIFinishReason(choice?.finish_reason),
    usage: {
      inputTokens: completion.usage?.prompt_tokens ?? 0,
      outputTokens: completion.usage?.completion_tokens ?? 0,
    },
    model: completion.model,
  };
  if (meta.upstreamRequestId !== undefined) response.upstreamRequestId = meta.upstreamRequestId;
  if (meta.rateLimit !== undefined) response.rateLimit = meta.rateLimit;
  return response;
}

/** What one streamed chunk contributes; the adapter folds these into deltas and one end chunk. */
export interface OpenAIChunkParts {
  text?: string;
  finishReason?: FinishReason;
  usage?: { inputTokens: number; outputTokens: number };
  model?: string;
}

export function fromOpenAIChunk(chunk: ChatCompletionChunk): OpenAIChunkParts {
  const parts: OpenAIChunkParts = {};
  const choice = chunk.choices?.[0];
  const text = choice?.delta?.content;
  if (typeof text === 'string' && text.length > 0) parts.text = text;
  if (choice?.finish_reason) parts.finishReason = fromOpenAIFinishReason(choice.finish_reason);
  if (chunk.usage) parts.usage = { inputTokens: chunk.usage.prompt_tokens ?? 0, outputTokens: chunk.usage.completion_tokens ?? 0 };
  if (chunk.model) parts.model = chunk.model;
  return parts;
}
