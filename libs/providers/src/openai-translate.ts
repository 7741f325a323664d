import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import { InvalidChatRequestError } from './errors';
import { contentParts, dataUrl, messageText } from './message-content';
import { validateChatRequest } from './validate';
import type { ChatMessage, ChatRequest, ChatResponse, ContentPart, FinishReason, MaxTokensParam, ProviderKind, ToolCall, ToolCallDelta } from './types';

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
    messages: req.messages.map(toOpenAIMessage),
  };
  params[opts.maxTokensParam ?? defaultMaxTokensParam(provider)] = req.maxTokens;
  if (req.temperature !== undefined) params['temperature'] = req.temperature;
  if (req.topP !== undefined) params['top_p'] = req.topP;
  if (req.stop !== undefined && req.stop.length > 0) params['stop'] = [...req.stop];
  if (req.user !== undefined) params['user'] = req.user;
  if (req.tools !== undefined && req.tools.length > 0) {
    params['tools'] = req.tools.map((t) => ({
      type: 'function',
      function: {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        parameters: t.parameters,
        ...(t.strict !== undefined ? { strict: t.strict } : {}),
      },
    }));
    // OpenAI rejects tool_choice and parallel_tool_calls without tools, so they are sent only with them.
    if (req.toolChoice !== undefined) {
      params['tool_choice'] = typeof req.toolChoice === 'string' ? req.toolChoice : { type: 'function', function: { name: req.toolChoice.name } };
    }
    if (req.parallelToolCalls !== undefined) params['parallel_tool_calls'] = req.parallelToolCalls;
  }
  const format = req.responseFormat;
  if (format !== undefined) {
    params['response_format'] =
      format.type === 'json_schema'
        ? { type: 'json_schema', json_schema: { name: format.name, schema: format.schema, ...(format.strict !== undefined ? { strict: format.strict } : {}) } }
        : { type: format.type };
  }
  if (req.seed !== undefined) params['seed'] = req.seed;
  if (opts.stream) {
    params['stream'] = true;
    params['stream_options'] = { include_usage: true };
  }
  return params as unknown as ChatCompletionCreateParamsNonStreaming | ChatCompletionCreateParamsStreaming;
}

/**
 * One neutral message → one Chat Completions message. String content stays a
 * string (what every OpenAI-compatible server accepts); a user message given
 * as parts keeps its parts (text / image_url, inline bytes as a data URL), so
 * separate text parts stay separate. System, assistant and tool messages are
 * text.
 */
function toOpenAIMessage(m: ChatMessage): Record<string, unknown> {
  switch (m.role) {
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId, content: messageText(m) };
    case 'assistant': {
      const text = messageText(m);
      if (!m.toolCalls?.length) return { role: 'assistant', content: text };
      return {
        role: 'assistant',
        // OpenAI's own tool-call turns carry content null when the model said nothing besides the calls.
        content: text.length > 0 ? text : null,
        tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
      };
    }
    default: {
      if (m.role !== 'user' || typeof m.content === 'string') return { role: m.role, content: messageText(m) };
      return { role: m.role, content: contentParts(m).map(toOpenAIPart) };
    }
  }
}

function toOpenAIPart(p: ContentPart): Record<string, unknown> {
  if (p.type === 'text') return { type: 'text', text: p.text };
  const url = p.source.kind === 'url' ? p.source.url : dataUrl(p.source.mediaType, p.source.data);
  return { type: 'image_url', image_url: { url, ...(p.detail !== undefined ? { detail: p.detail } : {}) } };
}

/** OpenAI finish_reason → neutral; the legacy function_call is a tool call too. */
export function fromOpenAIFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
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
  const toolCalls: ToolCall[] = [];
  for (const c of choice?.message?.tool_calls ?? []) {
    if (c.type === 'function') toolCalls.push({ id: c.id, name: c.function.name, arguments: c.function.arguments });
  }
  const response: ChatResponse = {
    content: choice?.message?.content ?? '',
    finishReason: fromOpenAIFinishReason(choice?.finish_reason),
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    ...(choice?.message?.refusal ? { refusal: choice.message.refusal } : {}),
    usage: {
      inputTokens: completion.usage?.prompt_tokens ?? 0,
      outputTokens: completion.usage?.completion_tokens ?? 0,
    },
    model: completion.model,
  };
  if (completion.id) response.responseId = completion.id;
  if (meta.upstreamRequestId !== undefined) response.upstreamRequestId = meta.upstreamRequestId;
  if (meta.rateLimit !== undefined) response.rateLimit = meta.rateLimit;
  return response;
}

/** What one streamed chunk contributes; the adapter folds these into deltas and one end chunk. */
export interface OpenAIChunkParts {
  text?: string;
  /** Tool-call pieces by OpenAI's index (dense per turn, so it is the neutral index as is). */
  toolCalls?: ToolCallDelta[];
  refusal?: string;
  finishReason?: FinishReason;
  usage?: { inputTokens: number; outputTokens: number };
  model?: string;
  /** The completion id every chunk of one stream repeats. */
  responseId?: string;
}

export function fromOpenAIChunk(chunk: ChatCompletionChunk): OpenAIChunkParts {
  const parts: OpenAIChunkParts = {};
  const choice = chunk.choices?.[0];
  const text = choice?.delta?.content;
  if (typeof text === 'string' && text.length > 0) parts.text = text;
  const refusal = choice?.delta?.refusal;
  if (typeof refusal === 'string' && refusal.length > 0) parts.refusal = refusal;
  for (const c of choice?.delta?.tool_calls ?? []) {
    const d: ToolCallDelta = { type: 'tool_call_delta', index: c.index, argumentsDelta: c.function?.arguments ?? '' };
    if (c.id) d.id = c.id;
    if (c.function?.name) d.name = c.function.name;
    (parts.toolCalls ??= []).push(d);
  }
  if (choice?.finish_reason) parts.finishReason = fromOpenAIFinishReason(choice.finish_reason);
  if (chunk.usage) parts.usage = { inputTokens: chunk.usage.prompt_tokens ?? 0, outputTokens: chunk.usage.completion_tokens ?? 0 };
  if (chunk.model) parts.model = chunk.model;
  if (chunk.id) parts.responseId = chunk.id;
  return parts;
}
