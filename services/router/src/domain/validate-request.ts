import type { RouteConfig, SwitchyardConfig } from '@switchyard/config';
import { CacheMode, Role, type CompleteRequest } from '@switchyard/contracts';
import type { ChatMessage, ChatRequest, ChatRole } from '@switchyard/providers';
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
    const role = ROLE_NAMES[m.role];
    if (!role) {
      throw new InvalidRequestError(`messages[${i}].role`, `must be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT, got ${Role[m.role] ?? m.role}`);
    }
    if (m.content.trim().length === 0) throw new InvalidRequestError(`messages[${i}].content`, 'must not be empty');
    promptChars += m.content.length;
    return { role, content: m.content };
  });
  if (!messages.some((m) => m.role !== 'system')) {
    throw new InvalidRequestError('messages', 'must contain at least one ROLE_USER or ROLE_ASSISTANT message');
  }
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

  return { routeName: req.route, route, chat, feature: req.feature, userId: req.userId, idempotencyKey: req.idempotencyKey, cache, promptChars };
}
