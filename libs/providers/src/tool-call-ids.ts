/**
 * Tool-call ids cross providers with a conversation: a call OpenAI named
 * `call_…` is answered later, maybe on Anthropic, whose tool_use ids must
 * match ^[a-zA-Z0-9_-]+$. OpenAI accepts any string. So ids go on the
 * Anthropic wire through toAnthropicToolId and come back through
 * fromAnthropicToolId: an id already in Anthropic's alphabet is sent
 * unchanged (so `call_…` and `toolu_…` ids look the same on both wires);
 * any other id becomes `sy1_` + base64url(UTF-8 id), which is in the
 * alphabet, deterministic (the tool_use and its tool_result get the same
 * mapped id) and reversible. An id that happens to start with `sy1_` is
 * encoded too, so decoding is never ambiguous.
 */

const ANTHROPIC_ID = /^[a-zA-Z0-9_-]+$/;
const PREFIX = 'sy1_';

export function toAnthropicToolId(id: string): string {
  if (ANTHROPIC_ID.test(id) && !id.startsWith(PREFIX)) return id;
  return PREFIX + Buffer.from(id, 'utf8').toString('base64url');
}

export function fromAnthropicToolId(id: string): string {
  if (!id.startsWith(PREFIX)) return id;
  const decoded = Buffer.from(id.slice(PREFIX.length), 'base64url').toString('utf8');
  // Only ids we produced decode back; anything else (a provider id that merely starts with the prefix) stays as is.
  return toAnthropicToolId(decoded) === id ? decoded : id;
}
