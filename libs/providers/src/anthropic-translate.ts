import type {
  Message,
  MessageCreateParamsNonStreaming,
  MessageCreateParamsStreaming,
  RawMessageStreamEvent,
} from '@anthropic-ai/sdk/resources/messages';
import { InvalidChatRequestError } from './errors';
import { contentParts, messageText, parseDataUrl } from './message-content';
import { fromAnthropicToolId, toAnthropicToolId } from './tool-call-ids';
import { validateChatRequest } from './validate';
import type { ChatMessage, ChatRequest, ChatResponse, FinishReason, ImagePart, ToolCall } from './types';
import type { ResponseMeta } from './openai-translate';

export interface AnthropicParamsOptions {
  model: string;
  /**
   * The deployment serves JSON-schema output natively (output_config.format).
   * When false (default) a json_schema response format is served through one
   * forced tool; see structuredOutputTool.
   */
  nativeJsonSchema?: boolean;
}

/** Separator used when system prompts or consecutive same-role turns are joined. */
export const ANTHROPIC_JOIN = '\n\n';

/** The forced tool's name for a json_object response format (no name of its own). */
export const JSON_OBJECT_TOOL = 'json_object';

type Block = Record<string, unknown>;
interface Turn {
  role: 'user' | 'assistant';
  /** A string while the turn is text only (what Anthropic shows in its own examples); blocks otherwise. */
  content: string | Block[];
}

/**
 * The tool that carries structured output when the deployment has no native
 * JSON-schema output: its input schema is the requested schema and the model
 * is forced to call it, so its input is the answer. Undefined when the request
 * needs no such tool.
 */
export function structuredOutputTool(req: Pick<ChatRequest, 'responseFormat'>, nativeJsonSchema: boolean): { name: string; schema: Record<string, unknown> } | undefined {
  const f = req.responseFormat;
  if (f?.type === 'json_schema' && !nativeJsonSchema) return { name: f.name, schema: f.schema };
  if (f?.type === 'json_object') return { name: JSON_OBJECT_TOOL, schema: { type: 'object' } };
  return undefined;
}

export function toAnthropicParams(req: ChatRequest, opts: AnthropicParamsOptions & { stream: true }): MessageCreateParamsStreaming;
export function toAnthropicParams(req: ChatRequest, opts: AnthropicParamsOptions & { stream?: false }): MessageCreateParamsNonStreaming;
/**
 * Neutral request → Messages API body. Anthropic takes the system prompt as a
 * top-level field and requires user/assistant alternation starting with user,
 * so: every system message (wherever it sits) is joined, in order, into
 * `system`; consecutive same-role turns are merged (text with a blank line,
 * the same text the model would have seen as separate turns, minus the turn
 * boundary). Tool results are tool_result blocks in a user turn, so
 * consecutive tool messages (and a user message after them) form one user
 * turn, results first, as Anthropic requires. Assistant tool calls become
 * tool_use blocks after the turn's text. A conversation whose first turn is
 * the assistant's is rejected rather than padded with an invented user turn:
 * inventing prompt text would silently change what the model answers.
 */
export function toAnthropicParams(
  req: ChatRequest,
  opts: AnthropicParamsOptions & { stream?: boolean },
): MessageCreateParamsNonStreaming | MessageCreateParamsStreaming {
  validateChatRequest(req, 'anthropic');
  if (typeof opts.model !== 'string' || opts.model.length === 0) throw new InvalidChatRequestError('model', 'must be a non-empty string');
  const system: string[] = [];
  const turns: Turn[] = [];
  for (const m of req.messages) {
    if (m.role === 'system') {
      system.push(messageText(m));
      continue;
    }
    const role = m.role === 'assistant' ? 'assistant' : 'user';
    const content = toAnthropicContent(m);
    const last = turns[turns.length - 1];
    if (!last || last.role !== role) turns.push({ role, content });
    else if (typeof last.content === 'string' && typeof content === 'string') last.content = `${last.content}${ANTHROPIC_JOIN}${content}`;
    else last.content = [...asBlocks(last.content), ...asBlocks(content)];
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

  const forced = structuredOutputTool(req, opts.nativeJsonSchema ?? false);
  if (forced) {
    if (req.tools?.length) {
      throw new InvalidChatRequestError('responseFormat', 'structured output through a forced tool cannot be combined with tools on this deployment (no native JSON-schema output)');
    }
    params['tools'] = [{ name: forced.name, description: 'Give the answer as this tool\'s input.', input_schema: forced.schema }];
    params['tool_choice'] = { type: 'tool', name: forced.name };
  } else {
    if (req.tools?.length) {
      params['tools'] = req.tools.map((t) => ({
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        input_schema: t.parameters,
        ...(t.strict !== undefined ? { strict: t.strict } : {}),
      }));
    }
    const choice = toAnthropicToolChoice(req);
    if (choice) params['tool_choice'] = choice;
    if (req.responseFormat?.type === 'json_schema') params['output_config'] = { format: { type: 'json_schema', schema: req.responseFormat.schema } };
  }
  if (opts.stream) params['stream'] = true;
  return params as unknown as MessageCreateParamsNonStreaming | MessageCreateParamsStreaming;
}

/**
 * auto → auto, required → any, a name → tool, none → none. Parallel calls off
 * is disable_parallel_tool_use on the choice (Anthropic has no separate
 * field), so it needs a choice object even when the caller gave none.
 */
function toAnthropicToolChoice(req: ChatRequest): Block | undefined {
  // Without tools a choice means nothing (and 'none' is what the model does anyway).
  if (!req.tools?.length) return undefined;
  const choice = req.toolChoice;
  if (choice === 'none') return { type: 'none' };
  const noParallel = req.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined) return Object.keys(noParallel).length > 0 ? { type: 'auto', ...noParallel } : undefined;
  if (choice === 'auto') return { type: 'auto', ...noParallel };
  if (choice === 'required') return { type: 'any', ...noParallel };
  return { type: 'tool', name: choice.name, ...noParallel };
}

function toAnthropicContent(m: ChatMessage): string | Block[] {
  if (m.role === 'tool') {
    return [{ type: 'tool_result', tool_use_id: toAnthropicToolId(m.toolCallId!), content: messageText(m) }];
  }
  const blocks: Block[] = [];
  for (const p of contentParts(m)) blocks.push(p.type === 'text' ? { type: 'text', text: p.text } : toAnthropicImage(p));
  if (m.role === 'assistant' && m.toolCalls?.length) {
    for (const c of m.toolCalls) blocks.push({ type: 'tool_use', id: toAnthropicToolId(c.id), name: c.name, input: JSON.parse(c.arguments) as unknown });
    return blocks;
  }
  // String content stays a string (as before parts existed); parts stay blocks, so separate texts stay separate.
  return typeof m.content === 'string' ? m.content : blocks;
}

function toAnthropicImage(p: ImagePart): Block {
  if (p.source.kind === 'base64') return { type: 'image', source: { type: 'base64', media_type: p.source.mediaType, data: p.source.data } };
  // A data URL is inline bytes in OpenAI's spelling; Anthropic takes those as a base64 source.
  const inline = parseDataUrl(p.source.url);
  if (inline) return { type: 'image', source: { type: 'base64', media_type: inline.mediaType, data: inline.data } };
  return { type: 'image', source: { type: 'url', url: p.source.url } };
}

function asBlocks(content: string | Block[]): Block[] {
  return typeof content === 'string' ? (content.length > 0 ? [{ type: 'text', text: content }] : []) : content;
}

/**
 * Anthropic stop_reason → neutral. `refusal` is Anthropic's policy stop (the
 * analogue of OpenAI's content_filter); hitting the context window is a length
 * stop; tool_use is a tool-call stop. pause_turn is outside the neutral model.
 */
export function fromAnthropicStopReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'tool_use':
      return 'tool_calls';
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

/**
 * Messages API body → neutral response; text blocks are concatenated in
 * order, tool_use blocks become tool calls (input re-serialised as compact
 * JSON text, ids mapped back). With `forcedTool` (structured output through a
 * tool) that tool's input is the answer: it becomes the content and the stop
 * is a plain stop, so the caller sees what a native json_schema answer looks like.
 */
export function fromAnthropicResponse(message: Message, meta: ResponseMeta = {}, forcedTool?: string): ChatResponse {
  let content = '';
  const toolCalls: ToolCall[] = [];
  let unwrapped = false;
  for (const block of message.content ?? []) {
    if (block.type === 'text') content += block.text;
    else if (block.type === 'tool_use') {
      if (forcedTool !== undefined && block.name === forcedTool) {
        content = JSON.stringify(block.input);
        unwrapped = true;
      } else toolCalls.push({ id: fromAnthropicToolId(block.id), name: block.name, arguments: JSON.stringify(block.input) });
    }
  }
  const finish = fromAnthropicStopReason(message.stop_reason);
  const response: ChatResponse = {
    content,
    finishReason: unwrapped && finish === 'tool_calls' ? 'stop' : finish,
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
    usage: {
      inputTokens: anthropicInputTokens(message.usage ?? {}),
      outputTokens: message.usage?.output_tokens ?? 0,
    },
    model: message.model,
  };
  if (message.id) response.responseId = message.id;
  if (message.stop_reason === 'stop_sequence' && message.stop_sequence) response.stopSequence = message.stop_sequence;
  if (meta.upstreamRequestId !== undefined) response.upstreamRequestId = meta.upstreamRequestId;
  if (meta.rateLimit !== undefined) response.rateLimit = meta.rateLimit;
  return response;
}

export interface AnthropicEventParts {
  text?: string;
  /** content_block_start of a tool_use block; `block` is Anthropic's content index (text blocks count too). */
  toolStart?: { block: number; id: string; name: string };
  /** input_json_delta: a fragment of the arguments of the tool_use at content index `block`. */
  toolArguments?: { block: number; fragment: string };
  finishReason?: FinishReason;
  /** message_delta's `stop_sequence`, when a stop sequence ended the answer. */
  stopSequence?: string;
  inputTokens?: number;
  /** Cumulative output tokens so far (message_delta carries the running total). */
  outputTokens?: number;
  model?: string;
  /** message_start's `message.id`: the id of the streamed answer. */
  responseId?: string;
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
        ...(event.message.id ? { responseId: event.message.id } : {}),
      };
    case 'content_block_start':
      if (event.content_block.type === 'tool_use') {
        return { toolStart: { block: event.index, id: fromAnthropicToolId(event.content_block.id), name: event.content_block.name } };
      }
      return event.content_block.type === 'text' && event.content_block.text ? { text: event.content_block.text } : {};
    case 'content_block_delta':
      if (event.delta.type === 'input_json_delta') return { toolArguments: { block: event.index, fragment: event.delta.partial_json } };
      return event.delta.type === 'text_delta' && event.delta.text ? { text: event.delta.text } : {};
    case 'message_delta': {
      const parts: AnthropicEventParts = {};
      if (event.delta.stop_reason) parts.finishReason = fromAnthropicStopReason(event.delta.stop_reason);
      if (event.delta.stop_reason === 'stop_sequence' && event.delta.stop_sequence) parts.stopSequence = event.delta.stop_sequence;
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
