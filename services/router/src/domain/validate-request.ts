import type { RouteConfig, SwitchyardConfig } from '@switchyard/config';
import { CacheMode, ResponseFormatType, Role, ToolChoiceMode, type ChatMessage as ChatMessageProto, type CompleteRequest, type GenerationParams } from '@switchyard/contracts';
import { validateChatFeatures, type ChatMessage, type ChatRequest, type ChatRole, type ContentPart, type ResponseFormat, type ToolChoice, type ToolDefinition } from '@switchyard/providers';
import { isFieldError } from '@switchyard/util';
import { InvalidRequestError } from './errors';

/** CompleteRequest and StreamCompleteRequest are field-for-field identical. */
export type CallRequest = Pick<
  CompleteRequest,
  'route' | 'messages' | 'params' | 'userId' | 'feature' | 'idempotencyKey' | 'cachePolicy'
>;

/** How this call uses the cache, after combining the caller's policy with the route. */
export interface CachePlan {
  /** Look the request up before calling upstream. */
  read: boolean;
  /** Store a fresh upstream answer. */
  write: boolean;
  /** Ask the cache for stale entries and serve one when every candidate failed. */
  staleOnError: boolean;
}

/** A request that passed validation, in the neutral shape the adapters take. */
export interface ValidatedCall {
  routeName: string;
  route: RouteConfig;
  chat: ChatRequest;
  feature: string;
  userId: string;
  idempotencyKey: string;
  cache: CachePlan;
  /** Characters of prompt text (all message contents). */
  promptChars: number;
}

export interface ValidationLimits {
  maxMessages: number;
  maxPromptChars: number;
  maxTokens: number;
  /** max_tokens used when the caller sends 0 (unset). */
  defaultMaxTokens: number;
}

const ROLE_NAMES: Partial<Record<Role, ChatRole>> = {
  [Role.SYSTEM]: 'system',
  [Role.USER]: 'user',
  [Role.ASSISTANT]: 'assistant',
  [Role.TOOL]: 'tool',
};

/** OpenAI accepts at most 4 stop sequences; the lowest common bound keeps every provider usable. */
export const MAX_STOP_SEQUENCES = 4;
/** A stop sequence is a delimiter, not text: bounded so that a field meant for a few characters cannot carry bulk. */
export const MAX_STOP_SEQUENCE_CHARS = 256;
/** Ids that end up in logs, budgets keys and metrics labels stay short and safe. */
const FEATURE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_USER_ID_CHARS = 256;
const MAX_IDEMPOTENCY_KEY_CHARS = 128;

/**
 * An upper bound of the encoded size of a request validateCall accepts under
 * `limits`: the prompt at 3 UTF-8 bytes per UTF-16 unit (the most any
 * character takes), at most 16 bytes of framing per message, the route name,
 * and 8 KiB for every other field at its bound (user_id, idempotency_key,
 * stop sequences, params). GRPC_MAX_RECEIVE_BYTES must admit it.
 */
export function largestValidRequestBytes(limits: Pick<ValidationLimits, 'maxMessages' | 'maxPromptChars'>, longestRouteChars: number): number {
  return 3 * limits.maxPromptChars + 16 * limits.maxMessages + 3 * longestRouteChars + 8 * 1024;
}

/** Resolves the route or throws INVALID_ARGUMENT on `route` (an unknown alias is bad input, like any other field). */
export function resolveRoute(config: Pick<SwitchyardConfig, 'routes'>, routeName: string): RouteConfig {
  if (!routeName) throw new InvalidRequestError('route', 'is required (a route alias from the gateway config)');
  const route = Object.prototype.hasOwnProperty.call(config.routes, routeName) ? config.routes[routeName] : undefined;
  if (!route) throw new InvalidRequestError('route', `unknown route "${routeName}"`);
  return route;
}

function checkRange(field: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new InvalidRequestError(field, `must be between ${min} and ${max}, got ${value}`);
  }
}

function cachePlan(req: CallRequest, route: RouteConfig): CachePlan {
  const mode = req.cachePolicy?.mode ?? CacheMode.UNSPECIFIED;
  if (!(mode in CacheMode) || typeof CacheMode[mode] !== 'string') {
    throw new InvalidRequestError('cache_policy.mode', `unknown cache mode ${mode}`);
  }
  const staleOnError = req.cachePolicy?.allowStaleOnError ?? route.allowStaleOnError;
  if (!route.cacheable || mode === CacheMode.BYPASS) return { read: false, write: false, staleOnError: false };
  switch (mode) {
    case CacheMode.REFRESH:
      // No lookup at all, so there is no stale copy in hand to fall back on.
      return { read: false, write: true, staleOnError: false };
    case CacheMode.NO_STORE:
      return { read: true, write: false, staleOnError };
    default:
      return { read: true, write: true, staleOnError };
  }
}

/**
 * Checks every caller-controlled field against the proto contract and the
 * configured bounds (DESIGN.md "Security"), and builds the neutral request.
 * Throws InvalidRequestError naming the first bad field. Runs before anything
 * is reserved, so bad input is never charged.
 */
export function validateCall(req: CallRequest, route: RouteConfig, limits: ValidationLimits): ValidatedCall {
  if (req.messages.length === 0) throw new InvalidRequestError('messages', 'must contain at least one message');
  if (req.messages.length > limits.maxMessages) {
    throw new InvalidRequestError('messages', `at most ${limits.maxMessages} messages are allowed, got ${req.messages.length}`);
  }
  let promptChars = 0;
  const messages: ChatMessage[] = req.messages.map((m, i) => {
    const message = toChatMessage(m, i);
    promptChars += m.content.length + m.parts.reduce((n, p) => n + (p.part.case === 'text' ? p.part.value.length : 0), 0);
    promptChars += m.toolCalls.reduce((n, c) => n + c.name.length + c.arguments.length, 0);
    return message;
  });
  if (!messages.some((m) => m.role !== 'system')) {
    throw new InvalidRequestError('messages', 'must contain at least one ROLE_USER or ROLE_ASSISTANT message');
  }
  const features = toFeatures(req.params);
  promptChars += features.chars;
  if (promptChars > limits.maxPromptChars) {
    throw new InvalidRequestError('messages', `prompt is ${promptChars} characters; at most ${limits.maxPromptChars} are allowed`);
  }

  const params = req.params;
  const requested = params?.maxTokens ?? 0;
  if (requested > limits.maxTokens) {
    throw new InvalidRequestError('params.max_tokens', `must be between 1 and ${limits.maxTokens} (0 means the default ${limits.defaultMaxTokens}), got ${requested}`);
  }
  checkRange('params.temperature', params?.temperature, 0, 2);
  checkRange('params.top_p', params?.topP, 0, 1);
  const stop = params?.stop ?? [];
  if (stop.length > MAX_STOP_SEQUENCES) {
    throw new InvalidRequestError('params.stop', `at most ${MAX_STOP_SEQUENCES} stop sequences are allowed, got ${stop.length}`);
  }
  stop.forEach((s, i) => {
    if (s.length === 0) throw new InvalidRequestError(`params.stop[${i}]`, 'must not be empty');
    if (s.length > MAX_STOP_SEQUENCE_CHARS) {
      throw new InvalidRequestError(`params.stop[${i}]`, `must be at most ${MAX_STOP_SEQUENCE_CHARS} characters, got ${s.length}`);
    }
  });

  if (req.feature && !FEATURE_PATTERN.test(req.feature)) {
    throw new InvalidRequestError('feature', 'must be 1-64 characters of A-Z a-z 0-9 _ . -');
  }
  if (req.userId.length > MAX_USER_ID_CHARS) {
    throw new InvalidRequestError('user_id', `must be at most ${MAX_USER_ID_CHARS} characters`);
  }
  if (req.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_CHARS) {
    throw new InvalidRequestError('idempotency_key', `must be at most ${MAX_IDEMPOTENCY_KEY_CHARS} characters`);
  }
  const cache = cachePlan(req, route);

  const chat: ChatRequest = { messages, maxTokens: requested === 0 ? Math.min(limits.defaultMaxTokens, limits.maxTokens) : requested };
  if (params?.temperature !== undefined) chat.temperature = params.temperature;
  if (params?.topP !== undefined) chat.topP = params.topP;
  if (stop.length > 0) chat.stop = [...stop];
  if (req.userId) chat.user = req.userId;
  Object.assign(chat, features.fields);
  try {
    validateChatFeatures(chat);
  } catch (err) {
    if (!isFieldError(err)) throw err;
    throw new InvalidRequestError(protoFieldPath(err.field, req.messages), err.problem, { cause: err });
  }

  return { routeName: req.route, route, chat, feature: req.feature, userId: req.userId, idempotencyKey: req.idempotencyKey, cache, promptChars };
}

/** One proto message → the neutral one; `content` and `parts` are two spellings of the same thing, never both. */
function toChatMessage(m: ChatMessageProto, i: number): ChatMessage {
  const role = ROLE_NAMES[m.role];
  if (!role) {
    throw new InvalidRequestError(`messages[${i}].role`, `must be ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL, got ${Role[m.role] ?? m.role}`);
  }
  if (m.content && m.parts.length > 0) throw new InvalidRequestError(`messages[${i}].parts`, 'set either content or parts, not both');
  const out: ChatMessage = { role, content: m.content };
  if (m.parts.length > 0) out.content = m.parts.map((p, j) => toContentPart(p, `messages[${i}].parts[${j}]`));
  if (m.toolCalls.length > 0) out.toolCalls = m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
  if (m.toolCallId) out.toolCallId = m.toolCallId;
  // An assistant turn that only calls tools has no text, and a tool may return nothing.
  const mayBeEmpty = role === 'tool' || (role === 'assistant' && m.toolCalls.length > 0);
  const empty = typeof out.content === 'string' ? out.content.trim().length === 0 : out.content.every((p) => p.type === 'text' && p.text.trim().length === 0);
  if (empty && !mayBeEmpty) throw new InvalidRequestError(`messages[${i}].content`, 'must not be empty');
  return out;
}

function toContentPart(p: ChatMessageProto['parts'][number], field: string): ContentPart {
  const part = p.part;
  if (part.case === 'text') return { type: 'text', text: part.value };
  if (part.case !== 'image') throw new InvalidRequestError(field, 'must set text or image');
  const image = part.value;
  const detail = image.detail ? { detail: image.detail as 'auto' | 'low' | 'high' } : {};
  switch (image.source.case) {
    case 'url':
      return { type: 'image', source: { kind: 'url', url: image.source.value }, ...detail };
    case 'data':
      if (!image.mediaType) throw new InvalidRequestError(`${field}.image.media_type`, 'is required with data');
      return { type: 'image', source: { kind: 'base64', mediaType: image.mediaType, data: Buffer.from(image.source.value).toString('base64') }, ...detail };
    default:
      throw new InvalidRequestError(`${field}.image`, 'must set url or data');
  }
}

function parseJsonField(text: string, field: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidRequestError(field, `is not JSON: ${(err as Error).message}`);
  }
}

/** Tools, tool choice, parallel calls, response format and seed in the neutral shape, and the characters of JSON they carry. */
function toFeatures(params: GenerationParams | undefined): { fields: Partial<ChatRequest>; chars: number } {
  const fields: Partial<ChatRequest> = {};
  let chars = 0;
  if (!params) return { fields, chars };
  if (params.tools.length > 0) {
    fields.tools = params.tools.map((t, i): ToolDefinition => {
      chars += t.name.length + t.description.length + t.parametersJson.length;
      // No parameters is a function without arguments, which both providers spell as an empty object schema.
      const parameters = t.parametersJson ? parseJsonField(t.parametersJson, `params.tools[${i}].parameters_json`) : { type: 'object', properties: {} };
      return { name: t.name, ...(t.description ? { description: t.description } : {}), parameters, ...(t.strict !== undefined ? { strict: t.strict } : {}) };
    });
  }
  const choice = params.toolChoice;
  if (choice && choice.mode !== ToolChoiceMode.UNSPECIFIED) fields.toolChoice = toToolChoice(choice.mode, choice.functionName);
  else if (choice?.functionName) throw new InvalidRequestError('params.tool_choice.mode', 'must be TOOL_CHOICE_MODE_FUNCTION with function_name');
  if (params.parallelToolCalls !== undefined) fields.parallelToolCalls = params.parallelToolCalls;
  const format = params.responseFormat;
  if (format) fields.responseFormat = toResponseFormat(format);
  if (format?.schemaJson) chars += format.schemaJson.length;
  if (params.seed !== undefined) {
    if (params.seed > BigInt(Number.MAX_SAFE_INTEGER) || params.seed < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new InvalidRequestError('params.seed', `must be a safe integer (|seed| <= ${Number.MAX_SAFE_INTEGER}), got ${params.seed}`);
    }
    fields.seed = Number(params.seed);
  }
  return { fields, chars };
}

function toToolChoice(mode: ToolChoiceMode, functionName: string): ToolChoice {
  switch (mode) {
    case ToolChoiceMode.AUTO:
      return 'auto';
    case ToolChoiceMode.NONE:
      return 'none';
    case ToolChoiceMode.REQUIRED:
      return 'required';
    case ToolChoiceMode.FUNCTION:
      if (!functionName) throw new InvalidRequestError('params.tool_choice.function_name', 'is required with TOOL_CHOICE_MODE_FUNCTION');
      return { name: functionName };
    default:
      throw new InvalidRequestError('params.tool_choice.mode', `unknown tool choice mode ${mode}`);
  }
}

function toResponseFormat(format: NonNullable<GenerationParams['responseFormat']>): ResponseFormat {
  switch (format.type) {
    case ResponseFormatType.UNSPECIFIED:
    case ResponseFormatType.TEXT:
      return { type: 'text' };
    case ResponseFormatType.JSON_OBJECT:
      return { type: 'json_object' };
    case ResponseFormatType.JSON_SCHEMA: {
      if (!format.schemaJson) throw new InvalidRequestError('params.response_format.schema_json', 'is required with RESPONSE_FORMAT_TYPE_JSON_SCHEMA');
      const schema = parseJsonField(format.schemaJson, 'params.response_format.schema_json');
      return { type: 'json_schema', name: format.name, schema, ...(format.strict !== undefined ? { strict: format.strict } : {}) };
    }
    default:
      throw new InvalidRequestError('params.response_format.type', `unknown response format type ${format.type}`);
  }
}

const TOP_LEVEL_PATHS: Record<string, string> = {
  tools: 'params.tools',
  toolChoice: 'params.tool_choice',
  parallelToolCalls: 'params.parallel_tool_calls',
  responseFormat: 'params.response_format',
  seed: 'params.seed',
};

/**
 * A neutral-model field path (what validateChatFeatures names) as the proto
 * path the caller wrote: `tools[0].parameters.type` → `params.tools[0].parameters_json.type`,
 * `messages[2].toolCallId` → `messages[2].tool_call_id`, `messages[1].content[0].mediaType`
 * → `messages[1].parts[0].image.media_type`. Inside a JSON document the path is kept as is.
 */
export function protoFieldPath(neutral: string, messages: readonly ChatMessageProto[]): string {
  const top = /^(tools|toolChoice|parallelToolCalls|responseFormat|seed)(.*)$/.exec(neutral);
  if (top) {
    const rest = top[2]!
      .replace(/^(\[\d+\])\.parameters/, '$1.parameters_json')
      .replace(/^\.schema/, '.schema_json')
      .replace(/^\.name$/, top[1] === 'toolChoice' ? '.function_name' : '.name');
    return TOP_LEVEL_PATHS[top[1]!] + rest;
  }
  const msg = /^messages\[(\d+)\](.*)$/.exec(neutral);
  if (!msg) return neutral;
  const i = Number(msg[1]);
  let rest = msg[2]!.replace(/^\.toolCalls/, '.tool_calls').replace(/^\.toolCallId/, '.tool_call_id');
  const part = /^\.content\[(\d+)\](?:\.(source|url|data|mediaType|detail))?(.*)$/.exec(rest);
  if (part && (messages[i]?.parts.length ?? 0) > 0) {
    const sub = part[2] === undefined ? '' : part[2] === 'source' ? '.image' : `.image.${part[2] === 'mediaType' ? 'media_type' : part[2]}`;
    rest = `.parts[${part[1]}]${sub}${part[3]}`;
  }
  return `messages[${i}]${rest}`;
}
