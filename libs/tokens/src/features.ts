import { countTextTokens, type TokenProvider } from './count';
import type { ImageDimensions } from './image-size';

/**
 * Tokens for what a chat carries beyond message text: tool definitions, tool
 * calls, and images. Counted beside countChatTokens (which frames the text);
 * the gateway adds these to its estimate and the simulator to what it bills,
 * so both agree and the estimate stays an upper bound of the charge.
 */

export interface TokenTool {
  name: string;
  description?: string;
  /** The JSON Schema as the provider receives it. */
  parameters: unknown;
}

export interface TokenToolCall {
  name: string;
  /** JSON text. */
  arguments: string;
}

/** Framing per tool definition and per tool call (the serialised wrapper around name, description and schema). */
export const TOOL_DEFINITION_OVERHEAD = 10;
export const TOOL_CALL_OVERHEAD = 6;
/**
 * Anthropic adds a tool-use system prompt whenever tools are given: 346 tokens
 * for tool_choice auto/none on current Claude models (313 for any/tool; we
 * take the larger, so the estimate stays an upper bound). OpenAI publishes no
 * figure; its hidden tool preamble is inside TOOL_DEFINITION_OVERHEAD plus
 * OPENAI_TOOLS_PREAMBLE.
 */
export const ANTHROPIC_TOOL_SYSTEM_PROMPT = 346;
export const OPENAI_TOOLS_PREAMBLE = 12;

/** Tool definitions: name, description and the schema's JSON text, with framing; 0 without tools. */
export function countToolDefinitionTokens(tools: readonly TokenTool[], provider: TokenProvider): number {
  if (tools.length === 0) return 0;
  let n = provider === 'anthropic' ? ANTHROPIC_TOOL_SYSTEM_PROMPT : OPENAI_TOOLS_PREAMBLE;
  for (const t of tools) n += TOOL_DEFINITION_OVERHEAD + countTextTokens(t.name) + countTextTokens(t.description ?? '') + countTextTokens(JSON.stringify(t.parameters ?? {}));
  return n;
}

/** Tool calls made by assistant turns in the prompt (or produced as output). */
export function countToolCallTokens(calls: readonly TokenToolCall[]): number {
  let n = 0;
  for (const c of calls) n += TOOL_CALL_OVERHEAD + countTextTokens(c.name) + countTextTokens(c.arguments);
  return n;
}

export type ImageDetail = 'auto' | 'low' | 'high';

/** OpenAI (gpt-4o family): 85 base + 170 per 512-px tile after scaling; low detail is the base alone. */
export const OPENAI_IMAGE_BASE = 85;
export const OPENAI_IMAGE_PER_TILE = 170;
/** Largest OpenAI charge: a 768×2048 scaled image is 2×4 tiles. */
export const OPENAI_IMAGE_MAX = OPENAI_IMAGE_BASE + 8 * OPENAI_IMAGE_PER_TILE;
/** Anthropic: ≈ width×height/750 after scaling to ≤ 1568 px on the long edge and ≤ ~1.15 MP; at most ~1600 tokens. */
export const ANTHROPIC_IMAGE_MAX = 1600;
const ANTHROPIC_MAX_EDGE = 1568;
const ANTHROPIC_MAX_PIXELS = ANTHROPIC_IMAGE_MAX * 750;

/**
 * Tokens one image costs on `provider`, by each provider's published rule.
 * Unknown dimensions (a URL the gateway does not fetch) cost the documented
 * maximum, so an estimate is never below the charge.
 */
export function countImageTokens(size: ImageDimensions | undefined, provider: TokenProvider, detail: ImageDetail = 'auto'): number {
  if (provider === 'anthropic') {
    if (!size) return ANTHROPIC_IMAGE_MAX;
    let { width: w, height: h } = size;
    const edge = Math.max(w, h);
    if (edge > ANTHROPIC_MAX_EDGE) {
      w = (w * ANTHROPIC_MAX_EDGE) / edge;
      h = (h * ANTHROPIC_MAX_EDGE) / edge;
    }
    if (w * h > ANTHROPIC_MAX_PIXELS) {
      const f = Math.sqrt(ANTHROPIC_MAX_PIXELS / (w * h));
      w *= f;
      h *= f;
    }
    return Math.min(ANTHROPIC_IMAGE_MAX, Math.ceil((w * h) / 750));
  }
  if (detail === 'low') return OPENAI_IMAGE_BASE;
  if (!size) return OPENAI_IMAGE_MAX;
  let { width: w, height: h } = size;
  // Fit within 2048×2048, then bring the shortest side down to 768.
  const fit = Math.min(1, 2048 / Math.max(w, h));
  w *= fit;
  h *= fit;
  const shortest = Math.min(w, h);
  if (shortest > 768) {
    w = (w * 768) / shortest;
    h = (h * 768) / shortest;
  }
  return OPENAI_IMAGE_BASE + OPENAI_IMAGE_PER_TILE * Math.ceil(Math.round(w) / 512) * Math.ceil(Math.round(h) / 512);
}
