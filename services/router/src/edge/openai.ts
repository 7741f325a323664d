import { FinishReason, ResponseFormatType, Role, ToolChoiceMode, type CompleteResponse, type Final } from '@switchyard/contracts';
import { answerHeaders, OPENAI_FINISH } from './answer-headers';
import { arr, bool, dataUrl, given, int, jsonText, num, obj, onlyKnown, str, type Obj } from './check';
import { badRequest, EdgeError, errorHeaders, toEdgeError } from './errors';
import { sendJson, type EdgeRequest } from './http-server';
import { controlFields, type HeaderControls, type RouterRequestInit } from './router-call';

type MessageInit = NonNullable<RouterRequestInit['messages']>[number];
type ParamsInit = NonNullable<RouterRequestInit['params']>;

const KNOWN = new Set([
  'model', 'messages', 'tools', 'tool_choice', 'parallel_tool_calls', 'response_format', 'seed', 'stop', 'temperature', 'top_p',
  'max_tokens', 'max_completion_tokens', 'n', 'user', 'stream', 'stream_options',
  // Accepted only at their defaults (null, or what leaves the answer unchanged): clients send them routinely.
  'frequency_penalty', 'presence_penalty', 'logprobs', 'top_logprobs', 'logit_bias', 'store', 'metadata', 'service_tier', 'modalities',
]);
const ROLES: Record<string, Role> = { system: Role.SYSTEM, developer: Role.SYSTEM, user: Role.USER, assistant: Role.ASSISTANT, tool: Role.TOOL };

function contentOf(v: unknown, param: string, role: string): Pick<MessageInit, 'content' | 'parts'> {
  if (!given(v)) return {};
  if (typeof v === 'string') return { content: v };
  const parts = arr(v, param).map((raw, i) => {
    const p = obj(raw, `${param}[${i}]`);
    const type = str(p.type, `${param}[${i}].type`);
    if (type === 'text') return { part: { case: 'text' as const, value: str(p.text, `${param}[${i}].text`) } };
    if (type === 'image_url' && role === 'user') {
      const image = obj(p.image_url, `${param}[${i}].image_url`);
      const url = str(image.url, `${param}[${i}].image_url.url`);
      const detail = given(image.detail) ? str(image.detail, `${param}[${i}].image_url.detail`) : '';
      const inline = dataUrl(url, `${param}[${i}].image_url.url`);
      const source = inline ? { case: 'data' as const, value: new Uint8Array(inline.data) } : { case: 'url' as const, value: url };
      return { part: { case: 'image' as const, value: { source, mediaType: inline?.mediaType ?? '', detail } } };
    }
    throw badRequest(`${param}[${i}].type`, role === 'user' ? `must be text or image_url, got "${type}"` : `must be text in a ${role} message, got "${type}"`);
  });
  return { parts };
}

function messageOf(raw: unknown, i: number): MessageInit {
  const m = obj(raw, `messages[${i}]`);
  const roleName = str(m.role, `messages[${i}].role`);
  const role = ROLES[roleName];
  if (role === undefined) throw badRequest(`messages[${i}].role`, `must be system, developer, user, assistant or tool, got "${roleName}"`);
  const out: MessageInit = { role, ...contentOf(m.content, `messages[${i}].content`, roleName) };
  if (role === Role.TOOL) out.toolCallId = str(m.tool_call_id, `messages[${i}].tool_call_id`);
  if (role === Role.ASSISTANT && given(m.tool_calls)) {
    out.toolCalls = arr(m.tool_calls, `messages[${i}].tool_calls`).map((rc, j) => {
      const c = obj(rc, `messages[${i}].tool_calls[${j}]`);
      const fn = obj(c.function, `messages[${i}].tool_calls[${j}].function`);
      return { id: str(c.id, `messages[${i}].tool_calls[${j}].id`), name: str(fn.name, `messages[${i}].tool_calls[${j}].function.name`), arguments: str(fn.arguments, `messages[${i}].tool_calls[${j}].function.arguments`) };
    });
  }
  return out;
}

function toolChoiceOf(v: unknown): ParamsInit['toolChoice'] {
  if (typeof v === 'string') {
    const mode = { auto: ToolChoiceMode.AUTO, none: ToolChoiceMode.NONE, required: ToolChoiceMode.REQUIRED }[v];
    if (mode === undefined) throw badRequest('tool_choice', `must be auto, none, required or {type: "function", function: {name}}, got "${v}"`);
    return { mode };
  }
  const c = obj(v, 'tool_choice');
  return { mode: ToolChoiceMode.FUNCTION, functionName: str(obj(c.function, 'tool_choice.function').name, 'tool_choice.function.name') };
}

function responseFormatOf(v: unknown): ParamsInit['responseFormat'] {
  const f = obj(v, 'response_format');
  const type = str(f.type, 'response_format.type');
  if (type === 'text') return { type: ResponseFormatType.TEXT };
  if (type === 'json_object') return { type: ResponseFormatType.JSON_OBJECT };
  if (type !== 'json_schema') throw badRequest('response_format.type', `must be text, json_object or json_schema, got "${type}"`);
  const s = obj(f.json_schema, 'response_format.json_schema');
  return {
    type: ResponseFormatType.JSON_SCHEMA,
    name: str(s.name, 'response_format.json_schema.name'),
    schemaJson: jsonText(obj(s.schema ?? {}, 'response_format.json_schema.schema'), 'response_format.json_schema.schema'),
    ...(given(s.strict) ? { strict: bool(s.strict, 'response_format.json_schema.strict') } : {}),
  };
}

export interface OpenAiCall {
  init: RouterRequestInit;
  stream: boolean;
  includeUsage: boolean;
}

/** An OpenAI chat.completions body → the router's request; every bad parameter is a 400 naming it. */
export function parseChatCompletion(body: unknown, controls: HeaderControls): OpenAiCall {
  const b = obj(body, 'body');
  onlyKnown(b, KNOWN, '');
  for (const [k, neutral] of [['frequency_penalty', 0], ['presence_penalty', 0], ['logprobs', false], ['top_logprobs', 0], ['store', false], ['service_tier', 'auto']] as const) {
    if (given(b[k]) && b[k] !== neutral) throw badRequest(k, `is not supported by this gateway (only ${JSON.stringify(neutral)} or null)`);
  }
  // Metadata tags a stored completion; this gateway stores none.
  if (given(b.metadata) && Object.keys(obj(b.metadata, 'metadata')).length > 0) throw badRequest('metadata', 'is not supported by this gateway (only {} or null: completions are not stored)');
  if (given(b.logit_bias) && Object.keys(obj(b.logit_bias, 'logit_bias')).length > 0) throw badRequest('logit_bias', 'is not supported by this gateway (only {} or null)');
  if (given(b.modalities)) {
    const modalities = arr(b.modalities, 'modalities');
    if (modalities.length !== 1 || modalities[0] !== 'text') throw badRequest('modalities', 'only ["text"] is supported');
  }
  if (given(b.n) && int(b.n, 'n') !== 1) throw badRequest('n', 'only n = 1 is supported');
  const params: ParamsInit = {};
  const maxTokens = given(b.max_completion_tokens) ? int(b.max_completion_tokens, 'max_completion_tokens') : given(b.max_tokens) ? int(b.max_tokens, 'max_tokens') : 0;
  if (maxTokens < 1 && (given(b.max_completion_tokens) || given(b.max_tokens))) throw badRequest(given(b.max_completion_tokens) ? 'max_completion_tokens' : 'max_tokens', `must be at least 1, got ${maxTokens}`);
  params.maxTokens = maxTokens;
  if (given(b.temperature)) params.temperature = num(b.temperature, 'temperature');
  if (given(b.top_p)) params.topP = num(b.top_p, 'top_p');
  if (given(b.stop)) params.stop = typeof b.stop === 'string' ? [b.stop] : arr(b.stop, 'stop').map((s, i) => str(s, `stop[${i}]`));
  if (given(b.seed)) params.seed = BigInt(int(b.seed, 'seed'));
  if (given(b.tools)) {
    params.tools = arr(b.tools, 'tools').map((raw, i) => {
      const t = obj(raw, `tools[${i}]`);
      if (t.type !== 'function') throw badRequest(`tools[${i}].type`, `must be "function", got ${JSON.stringify(t.type)}`);
      const fn = obj(t.function, `tools[${i}].function`);
      return {
        name: str(fn.name, `tools[${i}].function.name`),
        description: given(fn.description) ? str(fn.description, `tools[${i}].function.description`) : '',
        parametersJson: given(fn.parameters) ? jsonText(obj(fn.parameters, `tools[${i}].function.parameters`), `tools[${i}].function.parameters`) : JSON.stringify({ type: 'object', properties: {} }),
        ...(given(fn.strict) ? { strict: bool(fn.strict, `tools[${i}].function.strict`) } : {}),
      };
    });
  }
  if (given(b.tool_choice)) params.toolChoice = toolChoiceOf(b.tool_choice);
  if (given(b.parallel_tool_calls)) params.parallelToolCalls = bool(b.parallel_tool_calls, 'parallel_tool_calls');
  if (given(b.response_format)) params.responseFormat = responseFormatOf(b.response_format);
  const stream = given(b.stream) ? bool(b.stream, 'stream') : false;
  const options = given(b.stream_options) ? obj(b.stream_options, 'stream_options') : {};
  const includeUsage = given(options.include_usage) ? bool(options.include_usage, 'stream_options.include_usage') : false;
  return {
    init: {
      route: str(b.model, 'model'),
      messages: arr(b.messages, 'messages').map(messageOf),
      params,
      ...controlFields(controls, given(b.user) ? str(b.user, 'user') : undefined),
    },
    stream,
    includeUsage,
  };
}

const usageOf = (u: { inputTokens: number; outputTokens: number } | undefined) => ({
  prompt_tokens: u?.inputTokens ?? 0,
  completion_tokens: u?.outputTokens ?? 0,
  total_tokens: (u?.inputTokens ?? 0) + (u?.outputTokens ?? 0),
});

const toolCallsOf = (calls: readonly { id: string; name: string; arguments: string }[]) =>
  calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));

/** A whole answer as an OpenAI chat.completion object. */
export function chatCompletionBody(res: CompleteResponse, model: string, created: number): Obj {
  return {
    id: `chatcmpl-${res.requestId}`,
    object: 'chat.completion',
    created,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: res.toolCalls.length > 0 && !res.content ? null : res.content, refusal: res.refusal || null, ...(res.toolCalls.length > 0 ? { tool_calls: toolCallsOf(res.toolCalls) } : {}) },
        finish_reason: OPENAI_FINISH[res.finishReason] ?? 'stop',
        logprobs: null,
      },
    ],
    usage: usageOf(res.usage),
    system_fingerprint: null,
  };
}

const OPENAI_TYPES: Record<string, string> = {
  invalid_request: 'invalid_request_error',
  too_large: 'invalid_request_error',
  authentication: 'authentication_error',
  permission: 'permission_error',
  not_found: 'not_found_error',
  conflict: 'conflict_error',
  rate_limit: 'rate_limit_error',
  timeout: 'timeout_error',
  cancelled: 'cancelled',
};

/** OpenAI's error shape: {error: {message, type, param, code}}. 529 is not OpenAI's: it is 503 here. */
export function openAiErrorBody(e: EdgeError): Obj {
  return { error: { message: e.message, type: OPENAI_TYPES[e.kind] ?? 'server_error', param: e.extra.param ?? null, code: e.extra.code ?? null } };
}

export function sendOpenAiError(r: EdgeRequest, err: unknown): void {
  const e = toEdgeError(err, r.fieldPaths);
  const statusCode = e.status === 529 ? 503 : e.status;
  sendJson(r.res, statusCode, openAiErrorBody(e), errorHeaders(e));
}

/** The SSE writer of one streamed chat completion (chat.completion.chunk objects, then [DONE]). */
export function openAiChunkWriter(id: string, model: string, created: number, includeUsage: boolean) {
  const chunk = (choices: Obj[], extra: Obj = {}) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`;
  return {
    first: () => chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }], includeUsage ? { usage: null } : {}),
    text: (text: string) => chunk([{ index: 0, delta: { content: text }, finish_reason: null, logprobs: null }], includeUsage ? { usage: null } : {}),
    toolCall: (t: { index: number; id: string; name: string; argumentsFragment: string }) =>
      chunk(
        [{ index: 0, delta: { tool_calls: [{ index: t.index, ...(t.id ? { id: t.id, type: 'function' } : {}), function: { ...(t.name ? { name: t.name } : {}), arguments: t.argumentsFragment } }] }, finish_reason: null, logprobs: null }],
        includeUsage ? { usage: null } : {},
      ),
    /** The end: finish_reason, the usage chunk when asked for, [DONE]; or an error event and no [DONE]. */
    final: (f: Final): string => {
      if (f.finishReason === FinishReason.INCOMPLETE) {
        return `data: ${JSON.stringify({ error: { message: `stream interrupted after output was sent: ${f.errorMessage}`, type: 'server_error', param: null, code: 'stream_interrupted' } })}\n\n`;
      }
      let out = chunk([{ index: 0, delta: {}, finish_reason: OPENAI_FINISH[f.finishReason] ?? 'stop', logprobs: null }], includeUsage ? { usage: null } : {});
      if (includeUsage) out += chunk([], { usage: usageOf(f.usage) });
      return `${out}data: [DONE]\n\n`;
    },
    facts: (f: Final) => answerHeaders(f),
  };
}
