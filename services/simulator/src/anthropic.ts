import type { IncomingHttpHeaders } from 'node:http';
import { contentText, createIdSource, type ChatRequest, type Completion, type Dialect, type ErrorReply, type FaultContext } from './dialect';
import { formatRfc3339 } from './durations';
import type { LimitSnapshot, Rejection } from './rate-limits';
import type { FaultKind } from './scenario';
import { imageFromBase64, jsonPieces, NO_FEATURES, type ParsedMessages as SharedParsedMessages, type SimFeatures, type SimResponseFormat, type SimTool, type SimToolChoice } from './tools';

/**
 * Anthropic Messages API wire format: `POST /v1/messages`, `x-api-key` and
 * `anthropic-version` headers, typed error envelopes, and the named-event SSE
 * stream the `@anthropic-ai/sdk` parses.
 */

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const requestId = createIdSource(BASE58, 14);
const messageId = createIdSource(BASE58, 12);
const toolUseId = createIdSource(BASE58, 12);
const TOOL_USE_ID = /^[a-zA-Z0-9_-]+$/;
const RATE_LIMIT_TAIL =
  'For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.';

function err(status: number, type: string, message: string, errorCode?: string): ErrorReply {
  const error = errorCode ? { type, message, details: { error_code: errorCode } } : { type, message };
  return { status, body: JSON.stringify({ type: 'error', error }) };
}
const invalid = (message: string) => err(400, 'invalid_request_error', message);

type ParsedMessages = SharedParsedMessages & { usesToolBlocks: boolean };

type Block = { type?: unknown; text?: unknown; id?: unknown; name?: unknown; input?: unknown; tool_use_id?: unknown; content?: unknown; source?: { type?: unknown; data?: unknown; url?: unknown } };

function parseMessages(b: Record<string, unknown>): ParsedMessages | ErrorReply {
  const raw = b.messages;
  if (raw === undefined) return invalid('messages: Field required');
  if (!Array.isArray(raw)) return invalid('messages: Input should be a valid list');
  const out: ParsedMessages = { messages: [], historyCalls: [], images: [], endsWithToolResult: false, lastUserText: '', usesToolBlocks: false };
  // The top-level system prompt is billed as input; count it as a leading message.
  if (b.system !== undefined) {
    const system = contentText(b.system);
    if (system === null) return invalid('system: Input should be a valid string or a list of text blocks');
    out.messages.push({ role: 'system', content: system });
  }
  // tool_use ids of the previous assistant turn: a tool_result must answer one of them.
  let previousToolUses = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i] as { role?: unknown; content?: unknown } | null;
    if (!m || typeof m !== 'object') return invalid(`messages.${i}: Input should be a valid dictionary`);
    if (m.role === 'system') {
      return invalid('messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    }
    if (m.role !== 'user' && m.role !== 'assistant') return invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    let text = contentText(m.content);
    if (text === null) return invalid(`messages.${i}.content: Input should be a valid string or a list of content blocks`);
    const toolUses = new Set<string>();
    let results = 0;
    if (Array.isArray(m.content)) {
      const blocks = m.content as Block[];
      for (let j = 0; j < blocks.length; j++) {
        const block = blocks[j]!;
        if (block?.type === 'tool_use') {
          if (m.role !== 'assistant') return invalid(`messages.${i}.content.${j}: tool_use blocks are only allowed in assistant messages`);
          if (typeof block.id !== 'string' || !TOOL_USE_ID.test(block.id)) return invalid(`messages.${i}.content.${j}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
          if (typeof block.name !== 'string') return invalid(`messages.${i}.content.${j}.tool_use.name: Field required`);
          toolUses.add(block.id);
          out.historyCalls.push({ name: block.name, arguments: JSON.stringify(block.input ?? {}) });
          out.usesToolBlocks = true;
        } else if (block?.type === 'tool_result') {
          if (m.role !== 'user') return invalid(`messages.${i}.content.${j}: tool_result blocks are only allowed in user messages`);
          if (typeof block.tool_use_id !== 'string' || !previousToolUses.has(block.tool_use_id)) {
            return invalid(`messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(block.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
          }
          const resultText = contentText(block.content);
          text += resultText ?? '';
          results++;
          out.usesToolBlocks = true;
        } else if (block?.type === 'image') {
          if (block.source?.type === 'base64' && typeof block.source.data === 'string') out.images.push({ size: imageFromBase64(block.source.data), detail: 'auto' });
          else if (block.source?.type === 'url' && typeof block.source.url === 'string') out.images.push({ size: undefined, detail: 'auto' });
          else return invalid(`messages.${i}.content.${j}.image.source: Input tag does not match any of the expected tags: 'base64', 'url'`);
        }
      }
      if (m.role === 'user') {
        const missing = [...previousToolUses].filter((id) => !blocks.some((bl) => bl?.type === 'tool_result' && bl.tool_use_id === id));
        if (missing.length > 0) {
          return invalid(`messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
        }
      }
    } else if (m.role === 'user' && previousToolUses.size > 0) {
      return invalid(`messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...previousToolUses].join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
    }
    previousToolUses = toolUses;
    if (m.role === 'user') {
      const ownText = Array.isArray(m.content) ? (m.content as Block[]).filter((bl) => bl?.type === 'text').map((bl) => String(bl.text)).join('') : text;
      if (ownText) out.lastUserText = ownText;
      out.endsWithToolResult = results > 0;
    }
    out.messages.push({ role: m.role, content: text });
  }
  return out;
}

function parseFeatures(b: Record<string, unknown>, parsed: ParsedMessages): SimFeatures | ErrorReply {
  const tools: SimTool[] = [];
  if (b.tools !== undefined) {
    if (!Array.isArray(b.tools)) return invalid('tools: Input should be a valid list');
    for (let i = 0; i < b.tools.length; i++) {
      const t = b.tools[i] as { name?: unknown; description?: unknown; input_schema?: unknown };
      if (typeof t?.name !== 'string') return invalid(`tools.${i}.custom.name: Field required`);
      if (t.input_schema === undefined) return invalid(`tools.${i}.custom.input_schema: Field required`);
      tools.push({ name: t.name, ...(typeof t.description === 'string' ? { description: t.description } : {}), parameters: t.input_schema });
    }
  }
  if (parsed.usesToolBlocks && tools.length === 0) return invalid('Requests which include `tool_use` or `tool_result` blocks must define tools.');
  let toolChoice: SimToolChoice = 'auto';
  let parallel = true;
  const tc = b.tool_choice as { type?: unknown; name?: unknown; disable_parallel_tool_use?: unknown } | undefined;
  if (tc !== undefined) {
    if (tc.type === 'none') toolChoice = 'none';
    else if (tc.type === 'any') toolChoice = 'required';
    else if (tc.type === 'tool') {
      if (typeof tc.name !== 'string') return invalid('tool_choice.tool.name: Field required');
      if (!tools.some((t) => t.name === tc.name)) return invalid(`tool_choice.tool.name: Tool '${tc.name}' not found in provided tools`);
      toolChoice = { name: tc.name };
    } else if (tc.type !== 'auto') return invalid("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'");
    parallel = tc.disable_parallel_tool_use !== true;
  }
  let responseFormat: SimResponseFormat | null = null;
  const format = (b.output_config as { format?: { type?: unknown; schema?: unknown } } | undefined)?.format;
  if (format) {
    if (format.type !== 'json_schema' || format.schema === undefined) return invalid('output_config.format.json_schema.schema: Field required');
    // The native format has no name; counted as an empty one.
    responseFormat = { type: 'json_schema', name: '', schema: format.schema };
  }
  return {
    ...NO_FEATURES,
    tools,
    toolChoice,
    parallelToolCalls: parallel,
    responseFormat,
    historyCalls: parsed.historyCalls,
    images: parsed.images,
    endsWithToolResult: parsed.endsWithToolResult,
    lastUserText: parsed.lastUserText,
  };
}

function parse(body: unknown): ChatRequest | ErrorReply {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return invalid('Input should be a valid dictionary');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model.length === 0) return invalid('model: Field required');
  // Anthropic, unlike OpenAI, has no default output length: max_tokens is mandatory.
  if (b.max_tokens === undefined) return invalid('max_tokens: Field required');
  if (typeof b.max_tokens !== 'number' || !Number.isInteger(b.max_tokens) || b.max_tokens < 1) {
    return invalid('max_tokens: Input should be greater than or equal to 1');
  }
  const parsed = parseMessages(b);
  if ('status' in parsed) return parsed;
  const features = parseFeatures(b, parsed);
  if ('status' in features) return features;
  const stop = Array.isArray(b.stop_sequences) ? b.stop_sequences.filter((s): s is string => typeof s === 'string') : [];
  return { deployment: b.model, messages: parsed.messages, maxTokens: b.max_tokens, stream: b.stream === true, includeUsage: false, stop, features };
}

function nextMonthUtc(nowMs: number): string {
  const d = new Date(nowMs);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
}

function fault(kind: FaultKind, ctx: FaultContext): ErrorReply {
  switch (kind) {
    case 'rate_limit':
      return err(429, 'rate_limit_error', `This request would exceed the rate limit for your organization (org-simulator) of ${ctx.rpmLimit ?? 50} requests per minute. ${RATE_LIMIT_TAIL}`);
    case 'insufficient_quota':
      return invalid('Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.');
    case 'spend_limit':
      // The current API (as @anthropic-ai/sdk 1.x models it: EnforcedSpendLimitReachedError) answers an enforced
      // spend limit with a 429 rate_limit_error whose details.error_code tells it apart from an ordinary rate limit.
      return err(
        429,
        'rate_limit_error',
        `You have reached your specified API usage limits. You will regain access on ${nextMonthUtc(Date.now())} at 00:00 UTC.`,
        'enforced_spend_limit_reached',
      );
    case 'server_error':
      return err(500, 'api_error', 'Internal server error');
    case 'bad_gateway':
      return err(502, 'api_error', 'Bad gateway');
    case 'unavailable':
      return err(503, 'api_error', 'Service unavailable');
    case 'gateway_timeout':
      return err(504, 'timeout_error', 'Request timed out');
    case 'overloaded':
      return err(529, 'overloaded_error', 'Overloaded');
    case 'context_length':
      return invalid(`prompt is too long: ${Math.max(ctx.promptTokens, ctx.contextWindow + 1)} tokens > ${ctx.contextWindow} maximum`);
    case 'content_policy':
      return invalid('Output blocked by content filtering policy');
    case 'unauthorized':
      return err(401, 'authentication_error', 'invalid x-api-key');
    case 'forbidden':
      return err(403, 'permission_error', 'Your API key does not have permission to use the specified resource.');
    case 'not_found':
      return err(404, 'not_found_error', `model: ${ctx.deployment}`);
    case 'too_large':
      return err(413, 'request_too_large', 'Request exceeds the maximum allowed number of bytes.');
    default:
      throw new Error(`anthropic: fault ${kind} has no error body`);
  }
}

function rateLimited(r: Rejection): ErrorReply {
  const unit = r.dimension === 'requests' ? 'requests' : 'tokens';
  if (!Number.isFinite(r.retryAfterMs)) {
    return err(429, 'rate_limit_error', `This request would exceed the rate limit for your organization (org-simulator) of ${r.limit} ${unit} per minute: it alone requests ${r.requested} ${unit}. ${RATE_LIMIT_TAIL}`);
  }
  return err(429, 'rate_limit_error', `This request would exceed the rate limit for your organization (org-simulator) of ${r.limit} ${unit} per minute. ${RATE_LIMIT_TAIL}`);
}

/**
 * Anthropic limits input and output tokens separately; the simulator keeps one
 * token bucket per key (prompt + max_tokens) and reports it under all three
 * token families, which is what a client reading any of them needs.
 */
function addLimitHeaders(h: Record<string, string>, s: LimitSnapshot, now: number): void {
  if (s.requests) {
    h['anthropic-ratelimit-requests-limit'] = String(s.requests.limit);
    h['anthropic-ratelimit-requests-remaining'] = String(s.requests.remaining);
    h['anthropic-ratelimit-requests-reset'] = formatRfc3339(now + s.requests.resetMs);
  }
  if (s.tokens) {
    const limit = String(s.tokens.limit);
    const remaining = String(s.tokens.remaining);
    const reset = formatRfc3339(now + s.tokens.resetMs);
    for (const family of ['tokens', 'input-tokens', 'output-tokens']) {
      h[`anthropic-ratelimit-${family}-limit`] = limit;
      h[`anthropic-ratelimit-${family}-remaining`] = remaining;
      h[`anthropic-ratelimit-${family}-reset`] = reset;
    }
  }
}

const STOP_REASON = { stop: 'end_turn', length: 'max_tokens', stop_sequence: 'stop_sequence', content_filter: 'refusal', tool_calls: 'tool_use' } as const;

function usage(c: Completion, outputTokens: number): string {
  return `{"input_tokens":${c.promptTokens},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":${outputTokens},"service_tier":"standard"}`;
}

function completionBody(c: Completion): string {
  const blocks: string[] = [];
  if (c.text.length > 0) blocks.push(`{"type":"text","text":${JSON.stringify(c.text)}}`);
  for (const t of c.toolCalls) blocks.push(`{"type":"tool_use","id":"${t.id}","name":${JSON.stringify(t.name)},"input":${t.arguments}}`);
  const content = `[${blocks.join(',')}]`;
  return `{"id":"${c.id}","type":"message","role":"assistant","model":${JSON.stringify(c.model)},"content":${content},"stop_reason":"${STOP_REASON[c.finish]}","stop_sequence":${c.stopSequence === null ? 'null' : JSON.stringify(c.stopSequence)},"usage":${usage(c, c.completionTokens)}}`;
}

const event = (name: string, data: string) => `event: ${name}\ndata: ${data}\n\n`;

export function createAnthropicDialect(): Dialect {
  return {
    name: 'anthropic',
    tokenProvider: 'anthropic',
    apiKey: (headers: IncomingHttpHeaders) => {
      const key = headers['x-api-key'];
      if (typeof key === 'string' && key.length > 0) return key;
      const auth = headers.authorization;
      return auth?.startsWith('Bearer ') ? auth.slice(7).trim() || undefined : undefined;
    },
    preflight: (headers) => (headers['anthropic-version'] ? null : invalid('anthropic-version: header is required')),
    missingKey: () => err(401, 'authentication_error', 'x-api-key header is required'),
    invalidJson: () => invalid('There was an error parsing the body. Please make sure the request body is valid JSON.'),
    parse: (body) => parse(body),
    fault,
    rateLimited: (r) => rateLimited(r),
    // Anthropic error envelopes carry the request id in the body too ({type, error, request_id}).
    stampError: (body, headers) => `${body.slice(0, -1)},"request_id":"${headers['request-id']}"}`,
    baseHeaders: () => ({ 'content-type': 'application/json', 'request-id': `req_011C${requestId()}`, 'anthropic-organization-id': '00000000-0000-4000-8000-5100a7000000' }),
    addLimitHeaders,
    newId: () => `msg_01${messageId()}`,
    newToolCallId: () => `toolu_01${toolUseId()}`,
    completion: completionBody,
    stream: {
      // A tool-call answer has no text block: its tool_use blocks start at index 0.
      open: (c) =>
        event('message_start', `{"type":"message_start","message":{"id":"${c.id}","type":"message","role":"assistant","model":${JSON.stringify(c.model)},"content":[],"stop_reason":null,"stop_sequence":null,"usage":${usage(c, 1)}}}`) +
        (c.toolCalls.length === 0 ? event('content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}') : '') +
        event('ping', '{"type":"ping"}'),
      delta: (_c, piece) => event('content_block_delta', `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(piece)}}}`),
      // content_block_start with empty input, an empty input_json_delta, the argument fragments, content_block_stop: as Anthropic streams tool_use.
      toolFrames: (c) => {
        const frames: string[] = [];
        c.toolCalls.forEach((t, k) => {
          frames.push(
            event('content_block_start', `{"type":"content_block_start","index":${k},"content_block":{"type":"tool_use","id":"${t.id}","name":${JSON.stringify(t.name)},"input":{}}}`) +
              event('content_block_delta', `{"type":"content_block_delta","index":${k},"delta":{"type":"input_json_delta","partial_json":""}}`),
          );
          for (const piece of jsonPieces(t.arguments)) {
            frames.push(event('content_block_delta', `{"type":"content_block_delta","index":${k},"delta":{"type":"input_json_delta","partial_json":${JSON.stringify(piece)}}}`));
          }
          frames.push(event('content_block_stop', `{"type":"content_block_stop","index":${k}}`));
        });
        return frames;
      },
      close: (c) =>
        (c.toolCalls.length === 0 ? event('content_block_stop', '{"type":"content_block_stop","index":0}') : '') +
        event('message_delta', `{"type":"message_delta","delta":{"stop_reason":"${STOP_REASON[c.finish]}","stop_sequence":${c.stopSequence === null ? 'null' : JSON.stringify(c.stopSequence)}},"usage":{"output_tokens":${c.completionTokens}}}`) +
        event('message_stop', '{"type":"message_stop"}'),
      error: () => event('error', '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
    },
  };
}
