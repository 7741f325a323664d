import type {
  Message,
  MessageCreateParamsNonStreaming,
  MessageCreateParamsStreaming,
  RawMessageStreamEvent,
} from '@anthropic-ai/sdk/resources/messages';
import { InvalidChatRequestError } from './errors';
import { validateChatRequest } from './validate';
import type { ChatRequest, ChatResponse, FinishReason } from './types';
import type { ResponseMeta } from './openai-translate';

export interface AnthropicParamsOptions {
  model: string;
}

/** Separator used when system prompts or consecutive same-role turns are joined. */
export const ANTHROPIC_JOIN = '\n\n';

export function toAnthropicParams(req: ChatRequest, opts: AnthropicParamsOptions & { stream: true }): MessageCreateParamsStreaming;
export function toAnthropicParams(req: ChatRequest, opts: AnthropicParamsOptions & { stream?: false }): MessageCreateParamsNonStreaming;
/**
 * Neutral request → Messages API body. Anthropic takes the system prompt as a
 * top-level field and requires user/assistant alternation starting with user,
 * so: every system message (wherever it sits) is joined, in order, into
 * `system`; consecutive same-role turns are merged with a blank line (the
 * same text the model would have seen as separate turns, minus the turn
 * boundary). A conversation whose first turn is the assistant's is rejected
 * rather than padded with an invented user turn: inventing prompt text would
 * silently change what the model answers.
 */
export function toAnthropicParams(
  req: ChatRequest,
  opts: AnthropicParamsOptions & { stream?: boolean },
): MessageCreateParamsNonStreaming | MessageCreateParamsStreaming {
  validateChatRequest(req, 'anthropic');
  if (typeof opts.model !== 'string' || opts.model.length === 0) throw new InvalidChatRequestError('model', 'must be a non-empty string');
  const system: string[] = [];
  const turns: { role: 'user' | 'assistant'; content: string }[] = [];
  for (const m of req.messages) {
    if (m.role === 'system') {
      system.push(m.content);
      continue;
    }
    const last = turns[turns.length - 1];
    if (last && last.role === m.role) last.content = `${last.content}${ANTHROPIC_JOIN}${m.content}`;
    else turns.push({ role: m.role, content: m.content });
  }
  if (turns[0]!.role !== 'user') {
    const index = req.messages.findIndex((m) => m.role !== 'system');
    throw new InvalidChatRequestError(`messages[${index}].role`, 'Anthropic requires the first non-system message to be from the user');
  }
  const params: Record<string, unknown> = {
    model: opts.model,
    max_tokens: req.maxTokens,
    messages: turns,
  };
  if (system.length > 0) params['system'] = system.join(ANTHROPIC_JOIN);
  if (req.temperature !== undefined) params['temperature'] = req.temperature;
  if (req.topP !== undefined) params['top_p'] = req.topP;
  if (req.stop !== undefined && req.stop.length > 0) params['stop_sequences'] = [...req.stop];
  if (req.user !== undefined) params['metadata'] = { user_id: req.user };
  if (opts.stream) params['stream'] = true;
  return params as unknown as MessageCreateParamsNonStreaming | MessageCreateParamsStreaming;
}

/**
 * Anthropic stop_reason → neutral. `refusal` is Anthropic's policy stop (the
 * analogue of OpenAI's content_filter); hitting the context window is a length
 * stop. Tool use / pause are outside the neutral model.
 */
export function fromAnthropicStopReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'refusal':
      return 'content_filter';
    default:
      return 'other';
  }
}

/**
 * Input tokens include prompt-cache reads and writes: Anthropic reports them
 * separately from `input_tokens`, but they are prompt the call consumed and
 * the limiter's TPM accounting must see them.
 */
export function anthropicInputTokens(usage: {
  input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}): number {
  return (usage.input_tokens ?? 0) + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0);
}

/** Messages API body → neutral response; text blocks are concatenated in order. */
export function fromAnthropicResponse(message: Message, meta: ResponseMeta = {}): ChatResponse {
  let content = '';
  for (const block of message.content ?? []) {
    if (block.type === 'text') content += block.text;
  }
  const response: ChatResponse = {
    content,
    finishReason: fromAnthropicStopReason(message.stop_reason),
    usage: {
      inputTokens: anthropicInputTokens(message.usage ?? {}),
      outputTokens: message.usage?.output_tokens ?? 0,
    },
    model: message.model,
  };
  if (meta.upstreamRequestId !== undefined) response.upstreamRequestId = meta.upstreamRequestId;
  if (meta.rateLimit !== undefined) response.rateLimit = meta.rateLimit;
  return response;
}

export interface AnthropicEventParts {
  text?: string;
  finishReason?: FinishReason;
  inputTokens?: number;
  /** Cumulative output tokens so far (message_delta carries the running total). */
  outputTokens?: number;
  model?: string;
  /** message_stop: the only clean end of an Anthropic stream. */
  done?: true;
}

export function fromAnthropicEvent(event: RawMessageStreamEvent): AnthropicEventParts {
  switch (event.type) {
    case 'message_start':
      return {
        inputTokens: anthropicInputTokens(event.message.usage ?? {}),
        outputTokens: event.message.usage?.output_tokens ?? 0,
        model: event.message.model,
      };
    case 'content_block_start':
      return event.content_block.type === 'text' && event.content_block.text ? { text: event.content_block.text } : {};
    case 'content_block_delta':
      return event.delta.type === 'text_delta' && event.delta.text ? { text: event.delta.text } : {};
    case 'message_delta': {
      const parts: AnthropicEventParts = {};
      if (event.delta.stop_reason) parts.finishReason = fromAnthropicStopReason(event.delta.stop_reason);
      if (event.usage?.output_tokens != null) parts.outputTokens = event.usage.output_tokens;
      if (event.usage?.input_tokens != null) parts.inputTokens = anthropicInputTokens(event.usage);
      return parts;
    }
    case 'message_stop':
      return { done: true };
    default:
      return {};
  }
}
