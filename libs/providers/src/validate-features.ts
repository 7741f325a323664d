import { jsonDepth, MAX_JSON_DEPTH } from '@switchyard/util';
import { InvalidChatRequestError } from './errors';
import { messageImages, parseDataUrl } from './message-content';
import type { ChatMessage, ChatRequest, ImagePart, ResponseFormat, ToolChoice, ToolDefinition } from './types';

/**
 * Checks for what real callers send beyond text (tools, structured output,
 * images), each throwing a FieldError subclass that names the field, so a bad
 * call fails before anything is reserved or charged. Pure; the router calls
 * them (through validateChatFeatures) before estimating, and the adapters
 * through validateChatRequest.
 */

export class InvalidJsonSchemaError extends InvalidChatRequestError {
  override readonly name = 'InvalidJsonSchemaError';
}
export class UnknownToolCallIdError extends InvalidChatRequestError {
  override readonly name = 'UnknownToolCallIdError';
}
export class UnknownToolChoiceError extends InvalidChatRequestError {
  override readonly name = 'UnknownToolChoiceError';
}
export class ImageTooLargeError extends InvalidChatRequestError {
  override readonly name = 'ImageTooLargeError';
}
export class InvalidToolArgumentsError extends InvalidChatRequestError {
  override readonly name = 'InvalidToolArgumentsError';
}

/**
 * Largest inline image, decoded: Anthropic's per-image limit (5 MB), the
 * smallest of the providers' (OpenAI allows 20 MB), so an image valid here is
 * valid on every candidate.
 */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** The media types every provider accepts. */
export const IMAGE_MEDIA_TYPES: readonly string[] = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
/** Function and schema names: the intersection of OpenAI's and Anthropic's rules. */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const JSON_TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);
const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions'] as const;
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const;
const SCHEMA_ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains'] as const;

/**
 * A structural JSON Schema check (draft 2020-12 keywords both providers
 * accept): every subschema an object or boolean, `type` a JSON type or list of
 * them, `required` a list of strings, `enum` a non-empty list. Not a full
 * meta-schema validation, but it catches what breaks a provider call: a
 * schema that is not an object, a misspelt type, a malformed `properties`.
 */
export function checkJsonSchema(schema: unknown, field: string): void {
  if (jsonDepth(schema) > MAX_JSON_DEPTH) throw new InvalidJsonSchemaError(field, `is nested more than ${MAX_JSON_DEPTH} levels deep`);
  checkSubschema(schema, field);
}

function checkSubschema(schema: unknown, field: string): void {
  if (typeof schema === 'boolean') return;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new InvalidJsonSchemaError(field, 'must be a JSON Schema object');
  const s = schema as Record<string, unknown>;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (types.length === 0 || types.some((t) => typeof t !== 'string' || !JSON_TYPES.has(t))) {
      throw new InvalidJsonSchemaError(`${field}.type`, `must be one of ${[...JSON_TYPES].join(', ')} or a list of them (got ${JSON.stringify(s.type)})`);
    }
  }
  if (s.required !== undefined && (!Array.isArray(s.required) || s.required.some((r) => typeof r !== 'string'))) {
    throw new InvalidJsonSchemaError(`${field}.required`, 'must be a list of property names');
  }
  if (s.enum !== undefined && (!Array.isArray(s.enum) || s.enum.length === 0)) throw new InvalidJsonSchemaError(`${field}.enum`, 'must be a non-empty list');
  for (const key of SCHEMA_MAPS) {
    const map = s[key];
    if (map === undefined) continue;
    if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new InvalidJsonSchemaError(`${field}.${key}`, 'must be an object of schemas');
    for (const [name, sub] of Object.entries(map as Record<string, unknown>)) checkSubschema(sub, `${field}.${key}.${name}`);
  }
  for (const key of SCHEMA_LISTS) {
    const list = s[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) throw new InvalidJsonSchemaError(`${field}.${key}`, 'must be a non-empty list of schemas');
    list.forEach((sub, i) => checkSubschema(sub, `${field}.${key}[${i}]`));
  }
  for (const key of SCHEMA_ONE) if (s[key] !== undefined) checkSubschema(s[key], `${field}.${key}`);
}

/** Tool parameters must be an object schema: both providers call functions with a JSON object. */
export function checkToolDefinitions(tools: readonly ToolDefinition[]): void {
  const seen = new Set<string>();
  tools.forEach((t, i) => {
    if (t === null || typeof t !== 'object') throw new InvalidChatRequestError(`tools[${i}]`, 'must be an object');
    if (typeof t.name !== 'string' || !TOOL_NAME.test(t.name)) {
      throw new InvalidChatRequestError(`tools[${i}].name`, `must match ${TOOL_NAME.source} (got ${JSON.stringify(t.name)})`);
    }
    if (seen.has(t.name)) throw new InvalidChatRequestError(`tools[${i}].name`, `duplicates an earlier tool named "${t.name}"`);
    seen.add(t.name);
    if (t.description !== undefined && typeof t.description !== 'string') throw new InvalidChatRequestError(`tools[${i}].description`, 'must be a string');
    checkJsonSchema(t.parameters, `tools[${i}].parameters`);
    const type = (t.parameters as { type?: unknown }).type;
    if (type !== 'object') throw new InvalidJsonSchemaError(`tools[${i}].parameters.type`, `must be "object" (got ${JSON.stringify(type)})`);
    if (t.strict !== undefined && typeof t.strict !== 'boolean') throw new InvalidChatRequestError(`tools[${i}].strict`, 'must be a boolean');
  });
}

/** A named tool choice must name one of the tools; any choice but 'none' needs tools. */
export function checkToolChoice(choice: ToolChoice, tools: readonly ToolDefinition[] | undefined): void {
  if (choice === 'auto' || choice === 'none') return;
  if (choice === 'required') {
    if (!tools?.length) throw new UnknownToolChoiceError('toolChoice', '"required" needs at least one tool');
    return;
  }
  if (choice === null || typeof choice !== 'object' || typeof choice.name !== 'string') {
    throw new InvalidChatRequestError('toolChoice', 'must be "auto", "none", "required" or { name }');
  }
  if (!tools?.some((t) => t.name === choice.name)) {
    throw new UnknownToolChoiceError('toolChoice.name', `names no tool of this request (got "${choice.name}"; tools: ${(tools ?? []).map((t) => t.name).join(', ') || 'none'})`);
  }
}

export function checkResponseFormat(format: ResponseFormat): void {
  if (format === null || typeof format !== 'object') throw new InvalidChatRequestError('responseFormat', 'must be an object');
  if (format.type === 'text' || format.type === 'json_object') return;
  if (format.type !== 'json_schema') throw new InvalidChatRequestError('responseFormat.type', `must be text, json_object or json_schema (got ${JSON.stringify((format as { type?: unknown }).type)})`);
  if (typeof format.name !== 'string' || !TOOL_NAME.test(format.name)) {
    throw new InvalidChatRequestError('responseFormat.name', `must match ${TOOL_NAME.source} (got ${JSON.stringify(format.name)})`);
  }
  checkJsonSchema(format.schema, 'responseFormat.schema');
}

/** Arguments are JSON text of an object, as both providers produce and expect. */
export function checkToolArguments(args: unknown, field: string): void {
  if (typeof args !== 'string') throw new InvalidToolArgumentsError(field, 'must be JSON text');
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch (err) {
    throw new InvalidToolArgumentsError(field, `is not JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidToolArgumentsError(field, 'must be a JSON object');
  if (jsonDepth(value) > MAX_JSON_DEPTH) throw new InvalidToolArgumentsError(field, `is nested more than ${MAX_JSON_DEPTH} levels deep`);
}

/**
 * Tool turns: every assistant tool call has an id and JSON arguments; every
 * tool message answers a call made earlier in the conversation (and not yet
 * answered), so no provider sees a dangling tool_result; and the results of a
 * turn's calls come right after it, before any other message, as both OpenAI
 * and Anthropic require (a call left without its result is rejected by both).
 */
export function checkToolConversation(messages: readonly ChatMessage[]): void {
  const open = new Set<string>();
  const answered = new Set<string>();
  let openedAt = -1;
  messages.forEach((m, i) => {
    if (m.role !== 'tool' && open.size > 0) {
      throw new InvalidChatRequestError(`messages[${i}]`, `the tool calls ${[...open].map((id) => `"${id}"`).join(', ')} of messages[${openedAt}] need their tool messages before any other message`);
    }
    if (m.toolCalls?.length) openedAt = i;
    if (m.toolCalls !== undefined) {
      if (m.role !== 'assistant') throw new InvalidChatRequestError(`messages[${i}].toolCalls`, 'only assistant messages carry tool calls');
      if (!Array.isArray(m.toolCalls)) throw new InvalidChatRequestError(`messages[${i}].toolCalls`, 'must be an array');
      m.toolCalls.forEach((c, j) => {
        const f = `messages[${i}].toolCalls[${j}]`;
        if (typeof c?.id !== 'string' || c.id.length === 0) throw new InvalidChatRequestError(`${f}.id`, 'must be a non-empty string');
        if (open.has(c.id) || answered.has(c.id)) throw new InvalidChatRequestError(`${f}.id`, `duplicates an earlier tool call id "${c.id}"`);
        if (typeof c.name !== 'string' || !TOOL_NAME.test(c.name)) throw new InvalidChatRequestError(`${f}.name`, `must match ${TOOL_NAME.source}`);
        checkToolArguments(c.arguments, `${f}.arguments`);
        open.add(c.id);
      });
    }
    if (m.role === 'tool') {
      if (typeof m.toolCallId !== 'string' || m.toolCallId.length === 0) throw new InvalidChatRequestError(`messages[${i}].toolCallId`, 'a tool message must name the call it answers');
      if (!open.has(m.toolCallId)) {
        const why = answered.has(m.toolCallId) ? 'was already answered' : 'matches no earlier tool call';
        throw new UnknownToolCallIdError(`messages[${i}].toolCallId`, `"${m.toolCallId}" ${why}`);
      }
      open.delete(m.toolCallId);
      answered.add(m.toolCallId);
      if (messageImages(m).length > 0) throw new InvalidChatRequestError(`messages[${i}].content`, 'a tool result carries text only');
    } else if (m.toolCallId !== undefined) {
      throw new InvalidChatRequestError(`messages[${i}].toolCallId`, 'only tool messages answer a tool call');
    }
  });
}

/** Decoded size of base64 text without decoding it. */
export function base64DecodedBytes(data: string): number {
  const clean = data.replace(/=+$/, '');
  return Math.floor((clean.length * 3) / 4);
}

export function checkImage(part: ImagePart, field: string): void {
  const src = part.source;
  if (src === null || typeof src !== 'object') throw new InvalidChatRequestError(`${field}.source`, 'must be a URL or inline data');
  if (part.detail !== undefined && !['auto', 'low', 'high'].includes(part.detail)) {
    throw new InvalidChatRequestError(`${field}.detail`, `must be auto, low or high (got ${JSON.stringify(part.detail)})`);
  }
  let inline: { mediaType: string; data: string };
  let dataField = `${field}.data`;
  if (src.kind === 'url') {
    if (typeof src.url !== 'string') throw new InvalidChatRequestError(`${field}.url`, 'must be a string');
    if (/^https?:\/\//i.test(src.url)) return;
    // A data URL is inline bytes in OpenAI's spelling: the same checks apply.
    const parsed = parseDataUrl(src.url);
    if (!parsed) throw new InvalidChatRequestError(`${field}.url`, 'must be an http(s) URL or a base64 data: URL');
    inline = parsed;
    dataField = `${field}.url`;
  } else if (src.kind === 'base64') {
    inline = src;
  } else {
    throw new InvalidChatRequestError(`${field}.source`, 'must be a URL or inline data');
  }
  if (!IMAGE_MEDIA_TYPES.includes(inline.mediaType)) {
    throw new InvalidChatRequestError(`${field}.mediaType`, `must be one of ${IMAGE_MEDIA_TYPES.join(', ')} (got ${JSON.stringify(inline.mediaType)})`);
  }
  if (typeof inline.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(inline.data) || inline.data.length === 0) {
    throw new InvalidChatRequestError(dataField, 'must be non-empty base64');
  }
  const bytes = base64DecodedBytes(inline.data);
  if (bytes > MAX_IMAGE_BYTES) throw new ImageTooLargeError(dataField, `image is ${bytes} bytes; at most ${MAX_IMAGE_BYTES} are accepted`);
}

/** Everything above for one request: tools, tool choice, response format, tool turns and images. */
export function validateChatFeatures(req: ChatRequest): void {
  if (req.tools !== undefined) {
    if (!Array.isArray(req.tools)) throw new InvalidChatRequestError('tools', 'must be an array');
    checkToolDefinitions(req.tools);
  }
  if (req.toolChoice !== undefined) checkToolChoice(req.toolChoice, req.tools);
  if (req.parallelToolCalls !== undefined && typeof req.parallelToolCalls !== 'boolean') {
    throw new InvalidChatRequestError('parallelToolCalls', 'must be a boolean');
  }
  if (req.responseFormat !== undefined) checkResponseFormat(req.responseFormat);
  if (req.seed !== undefined && !Number.isSafeInteger(req.seed)) throw new InvalidChatRequestError('seed', `must be an integer (got ${String(req.seed)})`);
  checkToolConversation(req.messages);
  req.messages.forEach((m, i) => {
    if (typeof m.content === 'string') return;
    m.content.forEach((p, j) => {
      if (p.type === 'image') {
        if (m.role !== 'user') throw new InvalidChatRequestError(`messages[${i}].content[${j}]`, 'images are accepted in user messages only');
        checkImage(p, `messages[${i}].content[${j}]`);
      }
    });
  });
}
