import { ErrorClass, FinishReason, ResponseFormatType, Role, ToolChoiceMode, type CompleteResponse, type Final } from '@switchyard/contracts';
import { ANTHROPIC_STOP } from './answer-headers';
import { arr, base64Bytes, bool, given, int, jsonText, num, obj, onlyKnown, str, type Obj } from './check';
import { ANTHROPIC_PATHS, type DialectPaths, type MessageOrigin } from './field-paths';
import { badRequest, EdgeError, errorHeaders, toEdgeError } from './errors';
import { sendJson, type EdgeRequest } from './http-server';
import { controlFields, type HeaderControls, type RouterRequestInit } from './router-call';

type MessageInit = NonNullable<RouterRequestInit['messages']>[number];
type ParamsInit = NonNullable<RouterRequestInit['params']>;
type PartInit = NonNullable<MessageInit['parts']>[number];

const KNOWN = new Set(['model', 'max_tokens', 'messages', 'system', 'tools', 'tool_choice', 'stop_sequences', 'temperature', 'top_p', 'top_k', 'metadata', 'stream', 'output_config']);
const KNOWN_COUNT = new Set(['model', 'messages', 'system', 'tools', 'tool_choice', 'output_config']);

function textOf(v: unknown, param: string): string {
  if (typeof v === 'string') return v;
  return arr(v, param)
    .map((raw, i) => {
      const b = obj(raw, `${param}[${i}]`);
      if (b.type !== 'text') throw badRequest(`${param}[${i}].type`, `must be "text" here, got ${JSON.stringify(b.type)}`);
      return str(b.text, `${param}[${i}].text`);
    })
    // One line per block, as the providers' single-string fields get them (libs/providers messageText).
    .join('\n');
}

function imageOf(b: Obj, param: string): PartInit {
  const source = obj(b.source, `${param}.source`);
  const type = str(source.type, `${param}.source.type`);
  if (type === 'base64') {
    return { part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array(base64Bytes(str(source.data, `${param}.source.data`), `${param}.source.data`)) }, mediaType: str(source.media_type, `${param}.source.media_type`) } } };
  }
  if (type === 'url') return { part: { case: 'image', value: { source: { case: 'url', value: str(source.url, `${param}.source.url`) } } } };
  throw badRequest(`${param}.source.type`, `must be base64 or url, got "${type}"`);
}

/**
 * One Anthropic message → neutral messages: a user turn's tool_result blocks
 * become tool messages (in order, before its other content); an assistant
 * turn's tool_use blocks become its tool calls.
 */
function messagesOf(raw: unknown, i: number, origins: MessageOrigin[]): MessageInit[] {
  const at = `messages[${i}]`;
  const m = obj(raw, at);
  const roleName = str(m.role, `${at}.role`);
  if (roleName !== 'user' && roleName !== 'assistant') throw badRequest(`${at}.role`, `must be user or assistant, got "${roleName}"`);
  const role = roleName === 'user' ? Role.USER : Role.ASSISTANT;
  if (typeof m.content === 'string') {
    origins.push({ path: at });
    return [{ role, content: m.content }];
  }
  const blocks = arr(m.content, `${at}.content`);
  if (blocks.length === 0) throw badRequest(`${at}.content`, 'must hold at least one content block');
  const out: MessageInit[] = [];
  const parts: PartInit[] = [];
  const partAt: number[] = [];
  const toolCalls: { id: string; name: string; arguments: string }[] = [];
  const toolCallAt: string[] = [];
  blocks.forEach((rawBlock, j) => {
    const param = `${at}.content[${j}]`;
    const b = obj(rawBlock, param);
    const type = str(b.type, `${param}.type`);
    if (type === 'text') {
      parts.push({ part: { case: 'text', value: str(b.text, `${param}.text`) } });
      partAt.push(j);
    } else if (type === 'image' && role === Role.USER) {
      parts.push(imageOf(b, param));
      partAt.push(j);
    } else if (type === 'tool_use' && role === Role.ASSISTANT) {
      toolCalls.push({ id: str(b.id, `${param}.id`), name: str(b.name, `${param}.name`), arguments: jsonText(obj(b.input, `${param}.input`), `${param}.input`) });
      toolCallAt.push(`.content[${j}]`);
    } else if (type === 'tool_result' && role === Role.USER) {
      const text = given(b.content) ? textOf(b.content, `${param}.content`) : '';
      const isError = given(b.is_error) ? bool(b.is_error, `${param}.is_error`) : false;
      // The neutral model has no error flag on a tool result: the model reads it from the text.
      out.push({ role: Role.TOOL, toolCallId: str(b.tool_use_id, `${param}.tool_use_id`), content: isError ? `Error: ${text}` : text });
      origins.push({ path: param });
    } else throw badRequest(`${param}.type`, `"${type}" is not accepted in a ${roleName} message`);
  });
  if (role === Role.ASSISTANT) {
    const text = parts.flatMap((p) => (p.part?.case === 'text' ? [p.part.value] : [])).join('\n');
    out.push({ role, content: text, ...(toolCalls.length > 0 ? { toolCalls } : {}) });
    origins.push({ path: at, toolCalls: toolCallAt });
  } else if (parts.length > 0) {
    // Several blocks stay several parts (each provider gets them as blocks or content parts); one text block is the string shorthand.
    out.push(parts.length === 1 && parts[0]!.part?.case === 'text' ? { role, content: parts[0]!.part.value } : { role, parts });
    origins.push({ path: at, parts: partAt });
  }
  return out;
}

function toolsOf(b: Obj, params: ParamsInit): void {
  if (given(b.tools)) {
    params.tools = arr(b.tools, 'tools').map((raw, i) => {
      const t = obj(raw, `tools[${i}]`);
      return {
        name: str(t.name, `tools[${i}].name`),
        description: given(t.description) ? str(t.description, `tools[${i}].description`) : '',
        parametersJson: jsonText(obj(t.input_schema, `tools[${i}].input_schema`), `tools[${i}].input_schema`),
      };
    });
  }
  if (given(b.tool_choice)) {
    const c = obj(b.tool_choice, 'tool_choice');
    const type = str(c.type, 'tool_choice.type');
    const mode = { auto: ToolChoiceMode.AUTO, any: ToolChoiceMode.REQUIRED, tool: ToolChoiceMode.FUNCTION, none: ToolChoiceMode.NONE }[type];
    if (mode === undefined) throw badRequest('tool_choice.type', `must be auto, any, tool or none, got "${type}"`);
    params.toolChoice = { mode, ...(mode === ToolChoiceMode.FUNCTION ? { functionName: str(c.name, 'tool_choice.name') } : {}) };
    if (given(c.disable_parallel_tool_use) && bool(c.disable_parallel_tool_use, 'tool_choice.disable_parallel_tool_use')) params.parallelToolCalls = false;
  }
}

/**
 * Anthropic's structured output (`output_config.format`, a JSON schema the
 * answer's text must follow) → the neutral response format: sent natively
 * where the deployment declares jsonSchema, through a forced tool elsewhere,
 * the answer's text being the JSON either way (README "Chat features").
 */
function outputConfigOf(raw: unknown, params: ParamsInit): void {
  const c = obj(raw, 'output_config');
  onlyKnown(c, new Set(['format', 'effort']), 'output_config.');
  if (given(c.effort)) throw badRequest('output_config.effort', 'is not supported by this gateway (only null)');
  if (!given(c.format)) return;
  const f = obj(c.format, 'output_config.format');
  const type = str(f.type, 'output_config.format.type');
  if (type !== 'json_schema') throw badRequest('output_config.format.type', `must be json_schema, got "${type}"`);
  params.responseFormat = {
    type: ResponseFormatType.JSON_SCHEMA,
    name: 'output',
    schemaJson: jsonText(obj(f.schema, 'output_config.format.schema'), 'output_config.format.schema'),
    strict: true,
  };
}

/** The router's messages, and where each came from in the body (a system prompt and tool_result blocks become messages of their own). */
function conversationOf(b: Obj): { messages: MessageInit[]; paths: DialectPaths } {
  const system = given(b.system) ? textOf(b.system, 'system') : '';
  const origins: MessageOrigin[] = system ? [{ path: 'system' }] : [];
  const messages = [...(system ? [{ role: Role.SYSTEM, content: system }] : []), ...arr(b.messages, 'messages').flatMap((m, i) => messagesOf(m, i, origins))];
  return { messages, paths: ANTHROPIC_PATHS(origins) };
}

export interface AnthropicCall {
  init: RouterRequestInit;
  stream: boolean;
  /** How the router's field paths read in this body. */
  paths: DialectPaths;
}

/** An Anthropic messages body → the router's request; every bad parameter is a 400 naming it. */
export function parseMessages(body: unknown, controls: HeaderControls): AnthropicCall {
  const b = obj(body, 'body');
  onlyKnown(b, KNOWN, '');
  if (!given(b.max_tokens)) throw badRequest('max_tokens', 'is required');
  if (given(b.top_k)) throw badRequest('top_k', 'is not supported by this gateway');
  const params: ParamsInit = { maxTokens: int(b.max_tokens, 'max_tokens') };
  if (params.maxTokens! < 1) throw badRequest('max_tokens', 'must be at least 1');
  if (given(b.temperature)) params.temperature = num(b.temperature, 'temperature');
  if (given(b.top_p)) params.topP = num(b.top_p, 'top_p');
  if (given(b.stop_sequences)) params.stop = arr(b.stop_sequences, 'stop_sequences').map((s, i) => str(s, `stop_sequences[${i}]`));
  toolsOf(b, params);
  if (given(b.output_config)) outputConfigOf(b.output_config, params);
  const metadata = given(b.metadata) ? obj(b.metadata, 'metadata') : {};
  const user = given(metadata.user_id) ? str(metadata.user_id, 'metadata.user_id') : undefined;
  const conversation = conversationOf(b);
  return {
    init: { route: str(b.model, 'model'), messages: conversation.messages, params, ...controlFields(controls, user) },
    stream: given(b.stream) ? bool(b.stream, 'stream') : false,
    paths: conversation.paths,
  };
}

/**
 * A count_tokens body → the router request whose prompt it counts (the
 * router's own estimate, what the limiter and budget reserve, is taken from it
 * by the caller). max_tokens does not enter the prompt's count: 1.
 */
export function countTokensRequest(body: unknown): { init: RouterRequestInit; paths: DialectPaths } {
  const b = obj(body, 'body');
  onlyKnown(b, KNOWN_COUNT, '');
  const params: ParamsInit = { maxTokens: 1 };
  toolsOf(b, params);
  if (given(b.output_config)) outputConfigOf(b.output_config, params);
  const { messages, paths } = conversationOf(b);
  return { init: { route: str(b.model, 'model'), messages, params }, paths };
}

const msgId = (requestId: string) => `msg_${requestId.replace(/-/g, '')}`;

function parseInput(args: string): unknown {
  try {
    return JSON.parse(args);
  } catch {
    return {};
  }
}

/** Anthropic's error event type for what cut a stream mid-way, as Anthropic itself sends it (overloaded_error mid-stream); api_error otherwise. */
const INTERRUPTION_TYPES: Partial<Record<ErrorClass, string>> = {
  [ErrorClass.OVERLOADED]: 'overloaded_error',
  [ErrorClass.RATE_LIMITED]: 'rate_limit_error',
};

/** Anthropic's stop_reason and stop_sequence for an answer: a matched stop sequence is its own stop reason there. */
function stopFields(a: { finishReason: FinishReason; stopSequence: string }): { stop_reason: string; stop_sequence: string | null } {
  if (a.finishReason === FinishReason.STOP && a.stopSequence) return { stop_reason: 'stop_sequence', stop_sequence: a.stopSequence };
  return { stop_reason: ANTHROPIC_STOP[a.finishReason] ?? 'end_turn', stop_sequence: null };
}

/** A whole answer as an Anthropic message. */
export function messageBody(res: CompleteResponse, model: string): Obj {
  const content: Obj[] = [];
  if (res.content) content.push({ type: 'text', text: res.content });
  for (const c of res.toolCalls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: parseInput(c.arguments) });
  return {
    id: msgId(res.requestId),
    type: 'message',
    role: 'assistant',
    model,
    content,
    ...stopFields(res),
    usage: { input_tokens: res.usage?.inputTokens ?? 0, output_tokens: res.usage?.outputTokens ?? 0 },
  };
}

const ANTHROPIC_TYPES: Record<string, string> = {
  invalid_request: 'invalid_request_error',
  conflict: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  not_found: 'not_found_error',
  too_large: 'request_too_large',
  rate_limit: 'rate_limit_error',
  overloaded: 'overloaded_error',
  timeout: 'timeout_error',
};

export function anthropicErrorBody(e: EdgeError): Obj {
  return { type: 'error', error: { type: ANTHROPIC_TYPES[e.kind] ?? 'api_error', message: e.message } };
}

export function sendAnthropicError(r: EdgeRequest, err: unknown): void {
  const e = toEdgeError(err, r.fieldPaths ?? ANTHROPIC_PATHS([]));
  sendJson(r.res, e.status, anthropicErrorBody(e), errorHeaders(e));
}

const event = (name: string, data: Obj) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;

/**
 * Anthropic's streaming events in its order: message_start, then per content
 * block start / deltas / stop (text, or tool_use with input_json_delta), then
 * message_delta (stop reason, usage) and message_stop; an interruption after
 * output is an `error` event and no message_stop.
 */
export function anthropicEventWriter(requestId: string, model: string) {
  let open: { index: number; kind: 'text' | 'tool'; toolIndex?: number } | undefined;
  let next = 0;
  const close = () => {
    if (!open) return '';
    const out = event('content_block_stop', { index: open.index });
    open = undefined;
    return out;
  };
  return {
    // Anthropic counts the prompt in message_start (libraries such as LangChain read it only there); message_delta then has the provider's own count.
    first: (inputTokens: number) =>
      event('message_start', {
        message: { id: msgId(requestId), type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 0 } },
      }),
    text(text: string): string {
      let out = '';
      if (open?.kind !== 'text') {
        out += close();
        open = { index: next++, kind: 'text' };
        out += event('content_block_start', { index: open.index, content_block: { type: 'text', text: '' } });
      }
      return out + event('content_block_delta', { index: open.index, delta: { type: 'text_delta', text } });
    },
    toolCall(t: { index: number; id: string; name: string; argumentsFragment: string }): string {
      let out = '';
      if (open?.kind !== 'tool' || open.toolIndex !== t.index) {
        out += close();
        open = { index: next++, kind: 'tool', toolIndex: t.index };
        out += event('content_block_start', { index: open.index, content_block: { type: 'tool_use', id: t.id, name: t.name, input: {} } });
      }
      if (t.argumentsFragment) out += event('content_block_delta', { index: open.index, delta: { type: 'input_json_delta', partial_json: t.argumentsFragment } });
      return out;
    },
    final(f: Final): string {
      if (f.finishReason === FinishReason.INCOMPLETE) {
        return event('error', { error: { type: INTERRUPTION_TYPES[f.interruptedBy] ?? 'api_error', message: `stream interrupted after output was sent: ${f.errorMessage}` } });
      }
      return (
        close() +
        event('message_delta', {
          delta: stopFields(f),
          usage: { input_tokens: f.usage?.inputTokens ?? 0, output_tokens: f.usage?.outputTokens ?? 0 },
        }) +
        event('message_stop', {})
      );
    },
  };
}
