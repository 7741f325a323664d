import { InvalidChatRequestError } from './errors';
import { validateChatFeatures } from './validate-features';
import type { ChatRequest, ProviderKind } from './types';

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

/**
 * Checks a neutral request before any translation, so a bad request fails
 * here with the field named instead of as a provider 400 that costs a round
 * trip and reads differently per provider. Provider-specific ranges
 * (Anthropic temperature ≤ 1, OpenAI ≤ 4 stop sequences) are checked when a
 * provider is given; fitRequest brings a request into a provider's ranges
 * first, so these only catch a caller that skipped it.
 */
export function validateChatRequest(req: ChatRequest, provider?: ProviderKind): void {
  if (req === null || typeof req !== 'object') throw new InvalidChatRequestError('request', 'must be an object');
  if (!Array.isArray(req.messages)) throw new InvalidChatRequestError('messages', 'must be an array');
  if (req.messages.length === 0) throw new InvalidChatRequestError('messages', 'must contain at least one message');
  req.messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object') throw new InvalidChatRequestError(`messages[${i}]`, 'must be an object');
    if (!ROLES.has(m.role)) {
      throw new InvalidChatRequestError(`messages[${i}].role`, `must be system, user, assistant or tool (got ${JSON.stringify(m.role)})`);
    }
    if (typeof m.content === 'string') return;
    if (!Array.isArray(m.content)) throw new InvalidChatRequestError(`messages[${i}].content`, 'must be a string or an array of parts');
    m.content.forEach((p, j) => {
      if (p === null || typeof p !== 'object') throw new InvalidChatRequestError(`messages[${i}].content[${j}]`, 'must be an object');
      if (p.type === 'text') {
        if (typeof p.text !== 'string') throw new InvalidChatRequestError(`messages[${i}].content[${j}].text`, 'must be a string');
      } else if (p.type !== 'image') {
        throw new InvalidChatRequestError(`messages[${i}].content[${j}].type`, `must be text or image (got ${JSON.stringify((p as { type?: unknown }).type)})`);
      }
    });
  });
  validateChatFeatures(req);
  if (!req.messages.some((m) => m.role !== 'system')) {
    throw new InvalidChatRequestError('messages', 'must contain at least one user or assistant message');
  }
  if (typeof req.maxTokens !== 'number' || !Number.isInteger(req.maxTokens) || req.maxTokens <= 0) {
    throw new InvalidChatRequestError('maxTokens', `must be a positive integer (got ${String(req.maxTokens)})`);
  }
  const temperatureMax = provider === 'anthropic' ? 1 : 2;
  if (req.temperature !== undefined && !inRange(req.temperature, 0, temperatureMax)) {
    throw new InvalidChatRequestError('temperature', `must be a number in [0, ${temperatureMax}] (got ${String(req.temperature)})`);
  }
  if (req.topP !== undefined && !inRange(req.topP, 0, 1)) {
    throw new InvalidChatRequestError('topP', `must be a number in [0, 1] (got ${String(req.topP)})`);
  }
  if (req.stop !== undefined) {
    if (!Array.isArray(req.stop)) throw new InvalidChatRequestError('stop', 'must be an array of strings');
    req.stop.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0) throw new InvalidChatRequestError(`stop[${i}]`, 'must be a non-empty string');
    });
    if (provider !== undefined && provider !== 'anthropic' && req.stop.length > 4) {
      throw new InvalidChatRequestError('stop', `OpenAI-family providers accept at most 4 stop sequences (got ${req.stop.length})`);
    }
  }
  if (req.user !== undefined && typeof req.user !== 'string') throw new InvalidChatRequestError('user', 'must be a string');
}

function inRange(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;
}
