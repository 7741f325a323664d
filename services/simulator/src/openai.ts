import type { IncomingHttpHeaders } from 'node:http';
import { contentText, createIdSource, type ChatRequest, type Completion, type Dialect, type ErrorReply, type FaultContext } from './dialect';
import { formatOpenAIDuration, retryAfterSeconds } from './durations';
import type { LimitSnapshot, Rejection } from './rate-limits';
import type { FaultKind } from './scenario';
import { imageFromUrl, jsonPieces, NO_FEATURES, type ParsedMessages, type SimFeatures, type SimResponseFormat, type SimTool, type SimToolChoice } from './tools';

/**
 * OpenAI Chat Completions wire format, and Azure OpenAI's variant of it
 * (deployment in the path, `api-key` header, `api-version` query, a few
 * Azure-specific error bodies). Shapes follow what the official `openai`
 * SDK parses and what the providers return today.
 */

const HEX = '0123456789abcdef';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const requestId = createIdSource(HEX, 22);
const completionId = createIdSource(ALNUM, 19);
const toolCallId = createIdSource(ALNUM, 14);
const FINGERPRINT = 'fp_5imu1at0r';
const RATE_LIMIT_DOCS = 'Visit https://platform.openai.com/account/rate-limits to learn more.';

function err(status: number, message: string, type: string | null, param: string | null, code: string | number | null): ErrorReply {
  return { status, body: JSON.stringify({ error: { message, type, param, code } }) };
}


function parseOpenAIMessages(raw: unknown): ParsedMessages | ErrorReply {
  if (raw === undefined) return err(400, "Missing required parameter: 'messages'.", 'invalid_request_error', 'messages', 'missing_required_parameter');
  if (!Array.isArray(raw) || raw.length === 0) {
    return err(400, `Invalid 'messages': ${Array.isArray(raw) ? 'empty array. Expected an array with minimum length 1, but got an empty array instead.' : 'expected an array.'}`, 'invalid_request_error', 'messages', Array.isArray(raw) ? 'empty_array' : 'invalid_type');
  }
  const out: ParsedMessages = { messages: [], historyCalls: [], images: [], endsWithToolResult: false, lastUserText: '' };
  // Calls of the latest assistant turn not yet answered: OpenAI rejects a tool message that answers nothing.
  let open = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i] as { role?: unknown; content?: unknown; tool_calls?: unknown; tool_call_id?: unknown } | null;
    if (!m || typeof m !== 'object' || typeof m.role !== 'string') {
      return err(400, `Missing required parameter: 'messages[${i}].role'.`, 'invalid_request_error', `messages[${i}].role`, 'missing_required_parameter');
    }
    const text = contentText(m.content);
    if (text === null) return err(400, `Invalid type for 'messages[${i}].content': expected one of a string or array of objects.`, 'invalid_request_error', `messages[${i}].content`, 'invalid_type');
    if (m.role === 'tool') {
      if (typeof m.tool_call_id !== 'string') return err(400, `Missing required parameter: 'messages[${i}].tool_call_id'.`, 'invalid_request_error', `messages[${i}].tool_call_id`, 'missing_required_parameter');
      if (!open.delete(m.tool_call_id)) {
        return err(400, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", 'invalid_request_error', `messages.[${i}].role`, null);
      }
    } else if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
      open = new Set();
      for (const c of m.tool_calls as { id?: unknown; function?: { name?: unknown; arguments?: unknown } }[]) {
        if (typeof c?.id !== 'string' || typeof c.function?.name !== 'string' || typeof c.function.arguments !== 'string') {
          return err(400, `Invalid 'messages[${i}].tool_calls': each call needs an id and a function with name and arguments.`, 'invalid_request_error', `messages[${i}].tool_calls`, 'invalid_value');
        }
        open.add(c.id);
        out.historyCalls.push({ name: c.function.name, arguments: c.function.arguments });
      }
    } else if (open.size > 0) {
      return err(400, `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`, 'invalid_request_error', 'messages', null);
    }
    if (m.role === 'user') {
      if (text) out.lastUserText = text;
      if (Array.isArray(m.content)) {
        for (const part of m.content as { type?: unknown; image_url?: { url?: unknown; detail?: unknown } }[]) {
          if (part?.type !== 'image_url') continue;
          const url = part.image_url?.url;
          if (typeof url !== 'string') return err(400, `Missing required parameter: 'messages[${i}].content.image_url.url'.`, 'invalid_request_error', `messages[${i}].content`, 'missing_required_parameter');
          const detail = part.image_url?.detail === 'low' || part.image_url?.detail === 'high' ? part.image_url.detail : 'auto';
          out.images.push({ size: imageFromUrl(url), detail });
        }
      }
    }
    out.messages.push({ role: m.role, content: text });
  }
  out.endsWithToolResult = (raw[raw.length - 1] as { role?: unknown }).role === 'tool';
  return out;
}

function parseOpenAIFeatures(b: Record<string, unknown>, parsed: ParsedMessages): SimFeatures | ErrorReply {
  const tools: SimTool[] = [];
  if (b.tools !== undefined) {
    if (!Array.isArray(b.tools)) return err(400, "Invalid type for 'tools': expected an array.", 'invalid_request_error', 'tools', 'invalid_type');
    for (let i = 0; i < b.tools.length; i++) {
      const t = b.tools[i] as { type?: unknown; function?: { name?: unknown; description?: unknown; parameters?: unknown } };
      if (typeof t?.function?.name !== 'string') return err(400, `Missing required parameter: 'tools[${i}].function.name'.`, 'invalid_request_error', `tools[${i}].function.name`, 'missing_required_parameter');
      tools.push({ name: t.function.name, ...(typeof t.function.description === 'string' ? { description: t.function.description } : {}), parameters: t.function.parameters ?? {} });
    }
  }
  if (b.parallel_tool_calls !== undefined && tools.length === 0) {
    return err(400, "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.", 'invalid_request_error', 'parallel_tool_calls', null);
  }
  let toolChoice: SimToolChoice = 'auto';
  const tc = b.tool_choice as string | { function?: { name?: unknown } } | undefined;
  if (tc === 'none' || tc === 'required' || tc === 'auto') toolChoice = tc;
  else if (tc && typeof tc === 'object' && typeof tc.function?.name === 'string') toolChoice = { name: tc.function.name };
  let responseFormat: SimResponseFormat | null = null;
  const rf = b.response_format as { type?: unknown; json_schema?: { name?: unknown; schema?: unknown } } | undefined;
  if (rf?.type === 'json_object') responseFormat = { type: 'json_object' };
  else if (rf?.type === 'json_schema') {
    if (typeof rf.json_schema?.name !== 'string') return err(400, "Missing required parameter: 'response_format.json_schema.name'.", 'invalid_request_error', 'response_format.json_schema.name', 'missing_required_parameter');
    responseFormat = { type: 'json_schema', name: rf.json_schema.name, schema: rf.json_schema.schema ?? {} };
  }
  return {
    ...NO_FEATURES,
    tools,
    toolChoice,
    parallelToolCalls: b.parallel_tool_calls !== false,
    responseFormat,
    historyCalls: parsed.historyCalls,
    images: parsed.images,
    endsWithToolResult: parsed.endsWithToolResult,
    lastUserText: parsed.lastUserText,
  };
}

function parseChat(body: unknown, deployment: string | undefined): ChatRequest | ErrorReply {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return err(400, 'The request body must be a JSON object.', 'invalid_request_error', null, null);
  const b = body as Record<string, unknown>;
  const model = deployment ?? b.model;
  if (typeof model !== 'string' || model.length === 0) {
    return err(400, 'you must provide a model parameter', 'invalid_request_error', null, null);
  }
  const parsed = parseOpenAIMessages(b.messages);
  if ('status' in parsed) return parsed;
  const features = parseOpenAIFeatures(b, parsed);
  if ('status' in features) return features;
  const maxRaw = b.max_completion_tokens ?? b.max_tokens;
  if (maxRaw !== undefined && maxRaw !== null && (typeof maxRaw !== 'number' || !Number.isInteger(maxRaw) || maxRaw < 1)) {
    const param = b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
    return err(400, `Invalid '${param}': integer below minimum value. Expected a value >= 1, but got ${JSON.stringify(maxRaw)} instead.`, 'invalid_request_error', param, 'integer_below_min_value');
  }
  const stop = typeof b.stop === 'string' ? [b.stop] : Array.isArray(b.stop) ? b.stop.filter((s): s is string => typeof s === 'string') : [];
  const opts = b.stream_options as { include_usage?: unknown } | undefined;
  return {
    deployment: model,
    messages: parsed.messages,
    features,
    maxTokens: typeof maxRaw === 'number' ? maxRaw : null,
    stream: b.stream === true,
    includeUsage: !!opts && opts.include_usage === true,
    stop,
  };
}

function bearer(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (!auth) return undefined;
  return auth.startsWith('Bearer ') ? auth.slice(7).trim() || undefined : undefined;
}

function maskKey(key: string): string {
  return key.length <= 8 ? '****' : `${key.slice(0, 3)}*****${key.slice(-4)}`;
}

function openaiFault(kind: FaultKind, ctx: FaultContext): ErrorReply {
  switch (kind) {
    case 'rate_limit':
      return err(429, `Rate limit reached for ${ctx.model} in organization org-simulator on requests per min (RPM): Limit ${ctx.rpmLimit ?? 500}, Used ${ctx.rpmLimit ?? 500}, Requested 1. Please try again in ${formatOpenAIDuration(ctx.retryAfterMs)}. ${RATE_LIMIT_DOCS}`, 'requests', null, 'rate_limit_exceeded');
    case 'insufficient_quota':
    case 'spend_limit':
      // OpenAI has no separate spend-limit error: a hard budget limit answers exactly like an exhausted quota.
      return err(429, 'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.', 'insufficient_quota', null, 'insufficient_quota');
    case 'server_error':
      return err(500, 'The server had an error while processing your request. Sorry about that!', 'server_error', null, null);
    case 'bad_gateway':
      return err(502, 'Bad gateway.', 'cf_bad_gateway', null, 502);
    case 'unavailable':
      return err(503, 'The server is overloaded or not ready yet.', 'server_error', null, null);
    case 'gateway_timeout':
      return err(504, 'Gateway timeout.', 'cf_gateway_timeout', null, 504);
    case 'overloaded':
      return err(503, 'The engine is currently overloaded, please try again later.', 'server_error', null, null);
    case 'context_length': {
      const n = ctx.contextWindow;
      const m = Math.max(ctx.promptTokens, n + 1);
      return err(400, `This model's maximum context length is ${n} tokens. However, your messages resulted in ${m} tokens. Please reduce the length of the messages.`, 'invalid_request_error', 'messages', 'context_length_exceeded');
    }
    case 'content_policy':
      return err(400, 'Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.', 'invalid_request_error', null, 'content_policy_violation');
    case 'unauthorized':
      return err(401, `Incorrect API key provided: ${maskKey(ctx.apiKey)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', null, 'invalid_api_key');
    case 'forbidden':
      return err(403, `Project \`proj_simulator\` does not have access to model \`${ctx.model}\``, 'invalid_request_error', null, 'model_not_found');
    case 'not_found':
      return err(404, `The model \`${ctx.deployment}\` does not exist or you do not have access to it.`, 'invalid_request_error', null, 'model_not_found');
    case 'too_large':
      return err(413, 'Request too large. The request body exceeds the maximum allowed size.', 'invalid_request_error', null, 'request_too_large');
    default:
      throw new Error(`openai: fault ${kind} has no error body`);
  }
}

function openaiRateLimited(r: Rejection, ctx: FaultContext): ErrorReply {
  const what = r.dimension === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)';
  if (!Number.isFinite(r.retryAfterMs)) {
    return err(429, `Request too large for ${ctx.model} in organization org-simulator on ${what}: Limit ${r.limit}, Requested ${r.requested}. The input or output tokens must be reduced in order to run successfully. ${RATE_LIMIT_DOCS}`, 'tokens', null, 'rate_limit_exceeded');
  }
  return err(429, `Rate limit reached for ${ctx.model} in organization org-simulator on ${what}: Limit ${r.limit}, Used ${r.used}, Requested ${r.requested}. Please try again in ${formatOpenAIDuration(r.retryAfterMs)}. ${RATE_LIMIT_DOCS}`, r.dimension, null, 'rate_limit_exceeded');
}

function addLimitHeaders(h: Record<string, string>, s: LimitSnapshot): void {
  if (s.requests) {
    h['x-ratelimit-limit-requests'] = String(s.requests.limit);
    h['x-ratelimit-remaining-requests'] = String(s.requests.remaining);
    h['x-ratelimit-reset-requests'] = formatOpenAIDuration(s.requests.resetMs);
  }
  if (s.tokens) {
    h['x-ratelimit-limit-tokens'] = String(s.tokens.limit);
    h['x-ratelimit-remaining-tokens'] = String(s.tokens.remaining);
    h['x-ratelimit-reset-tokens'] = formatOpenAIDuration(s.tokens.resetMs);
  }
}

const usageJson = (c: Completion) =>
  `{"prompt_tokens":${c.promptTokens},"completion_tokens":${c.completionTokens},"total_tokens":${c.promptTokens + c.completionTokens},"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`;

const finishReason = (c: Completion) => (c.finish === 'stop_sequence' ? 'stop' : c.finish);

const toolCallsJson = (c: Completion) =>
  `[${c.toolCalls.map((t) => `{"id":"${t.id}","type":"function","function":{"name":${JSON.stringify(t.name)},"arguments":${JSON.stringify(t.arguments)}}}`).join(',')}]`;

// Bodies are assembled as strings: JSON.stringify only for user-derived text, which is what keeps the hot path cheap.
function completionBody(c: Completion): string {
  // A tool-call answer has content null and the calls, as OpenAI sends it.
  const message =
    c.toolCalls.length > 0
      ? `{"role":"assistant","content":null,"tool_calls":${toolCallsJson(c)},"refusal":null,"annotations":[]}`
      : `{"role":"assistant","content":${JSON.stringify(c.text)},"refusal":null,"annotations":[]}`;
  return `{"id":"${c.id}","object":"chat.completion","created":${c.created},"model":${JSON.stringify(c.model)},"choices":[{"index":0,"message":${message},"logprobs":null,"finish_reason":"${finishReason(c)}"}],"usage":${usageJson(c)},"service_tier":"default","system_fingerprint":"${FINGERPRINT}"}`;
}

function chunk(c: Completion, choices: string, includeUsage: boolean): string {
  return `data: {"id":"${c.id}","object":"chat.completion.chunk","created":${c.created},"model":${JSON.stringify(c.model)},"service_tier":"default","system_fingerprint":"${FINGERPRINT}","choices":${choices}${includeUsage ? ',"usage":null' : ''}}\n\n`;
}

function createOpenAIStream(): Dialect['stream'] {
  // With stream_options.include_usage every chunk carries "usage":null and a last chunk with empty choices carries usage.
  return {
    open: () => '',
    delta: (c, piece, index) => {
      const role = index === 0 ? '"role":"assistant",' : '';
      const refusal = index === 0 ? ',"refusal":null' : '';
      return chunk(c, `[{"index":0,"delta":{${role}"content":${JSON.stringify(piece)}${refusal}},"logprobs":null,"finish_reason":null}]`, c.includeUsage);
    },
    // Each call opens with a chunk carrying index, id, name and empty arguments, then one chunk per argument fragment.
    toolFrames: (c) => {
      const frames: string[] = [];
      c.toolCalls.forEach((t, k) => {
        const head = k === 0 ? '"role":"assistant","content":null,' : '';
        frames.push(chunk(c, `[{"index":0,"delta":{${head}"tool_calls":[{"index":${k},"id":"${t.id}","type":"function","function":{"name":${JSON.stringify(t.name)},"arguments":""}}]${k === 0 ? ',"refusal":null' : ''}},"logprobs":null,"finish_reason":null}]`, c.includeUsage));
        for (const piece of jsonPieces(t.arguments)) {
          frames.push(chunk(c, `[{"index":0,"delta":{"tool_calls":[{"index":${k},"function":{"arguments":${JSON.stringify(piece)}}}]},"logprobs":null,"finish_reason":null}]`, c.includeUsage));
        }
      });
      return frames;
    },
    close: (c) => {
      let out = chunk(c, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"${finishReason(c)}"}]`, c.includeUsage);
      if (c.includeUsage) {
        out += `data: {"id":"${c.id}","object":"chat.completion.chunk","created":${c.created},"model":${JSON.stringify(c.model)},"service_tier":"default","system_fingerprint":"${FINGERPRINT}","choices":[],"usage":${usageJson(c)}}\n\n`;
      }
      return out + 'data: [DONE]\n\n';
    },
    // OpenAI reports a failure inside an open stream as a data frame carrying `error`; the SDK throws APIError on it.
    error: () => 'data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}\n\n',
  };
}

export function createOpenAIDialect(): Dialect {
  return {
    name: 'openai',
    tokenProvider: 'openai',
    apiKey: bearer,
    preflight: () => null,
    missingKey: () =>
      err(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.", 'invalid_request_error', null, null),
    invalidJson: () =>
      err(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)", 'invalid_request_error', null, null),
    parse: (body) => parseChat(body, undefined),
    fault: openaiFault,
    rateLimited: openaiRateLimited,
    stampError: (body) => body,
    baseHeaders: () => ({ 'content-type': 'application/json', 'x-request-id': `req_${requestId()}`, 'openai-version': '2020-10-01', 'openai-organization': 'org-simulator', 'openai-processing-ms': '0' }),
    addLimitHeaders: (h, s) => addLimitHeaders(h, s),
    newId: () => `chatcmpl-${completionId()}`,
    newToolCallId: () => `call_${toolCallId()}`,
    completion: completionBody,
    stream: createOpenAIStream(),
  };
}

function azureErr(status: number, code: string, message: string): ErrorReply {
  return { status, body: JSON.stringify({ error: { code, message } }) };
}

function azureUnauthorized(): ErrorReply {
  return azureErr(401, '401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.');
}

/** Azure OpenAI: the OpenAI format behind `/openai/deployments/{deployment}`, with Azure's own auth and throttling bodies. */
export function createAzureDialect(): Dialect {
  const base = createOpenAIDialect();
  return {
    ...base,
    name: 'azure',
    tokenProvider: 'azure',
    apiKey: (headers) => {
      const key = headers['api-key'];
      if (typeof key === 'string' && key.length > 0) return key;
      return bearer(headers); // Entra ID tokens arrive as Bearer
    },
    preflight: (_headers, query) => {
      // Azure answers a missing api-version with a bare 404, before looking at anything else.
      if (!new URLSearchParams(query).get('api-version')) return azureErr(404, '404', 'Resource not found');
      return null;
    },
    missingKey: azureUnauthorized,
    parse: (body, deployment, query) => {
      const r = parseChat(body, deployment);
      if ('deployment' in r) r.apiVersion = new URLSearchParams(query).get('api-version') ?? undefined;
      return r;
    },
    fault: (kind, ctx) => {
      switch (kind) {
        case 'rate_limit':
          return azureErr(429, '429', `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${ctx.apiVersion ?? ''} have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfterSeconds(ctx.retryAfterMs)} second${retryAfterSeconds(ctx.retryAfterMs) === 1 ? '' : 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`);
        case 'unauthorized':
          return azureUnauthorized();
        case 'not_found':
          return azureErr(404, 'DeploymentNotFound', 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.');
        case 'content_policy':
          return {
            status: 400,
            body: JSON.stringify({
              error: {
                message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                type: null,
                param: 'prompt',
                code: 'content_filter',
                status: 400,
                innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: { hate: { filtered: true, severity: 'high' } } },
              },
            }),
          };
        default:
          return base.fault(kind, ctx);
      }
    },
    rateLimited: (r, ctx) => {
      if (!Number.isFinite(r.retryAfterMs)) return base.rateLimited(r, ctx);
      const what = r.dimension === 'requests' ? 'call rate limit' : 'token rate limit';
      const s = retryAfterSeconds(r.retryAfterMs);
      return azureErr(429, '429', `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${ctx.apiVersion ?? ''} have exceeded ${what} of your current OpenAI S0 pricing tier. Please retry after ${s} second${s === 1 ? '' : 's'}. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`);
    },
    baseHeaders: () => {
      const h = base.baseHeaders();
      h['apim-request-id'] = h['x-request-id']!.slice(4);
      h['x-ms-region'] = 'Simulated Region';
      return h;
    },
  };
}
