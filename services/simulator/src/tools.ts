import { countImageTokens, countToolCallTokens, countToolDefinitionTokens, imageDimensions, type ImageDetail, type ImageDimensions, type TokenMessage, type TokenProvider } from '@switchyard/tokens';
import { hashString } from './prng';

/**
 * What a chat carries beyond text, normalised from either wire: tools, tool
 * choice, structured output, tool calls already in the conversation, images.
 * The simulator answers deterministically from it: which tools it calls and
 * with which arguments depend only on the conversation, so tests can predict
 * every byte.
 */

export interface SimTool {
  name: string;
  description?: string;
  parameters: unknown;
}

export type SimToolChoice = 'auto' | 'none' | 'required' | { name: string };

export type SimResponseFormat = { type: 'json_object' } | { type: 'json_schema'; name: string; schema: unknown };

export interface SimImage {
  /** Undefined when the image is a URL (the simulator fetches nothing; see IMAGE_URL_ASSUMED). */
  size: ImageDimensions | undefined;
  detail: ImageDetail;
}

export interface SimFeatures {
  tools: SimTool[];
  toolChoice: SimToolChoice;
  parallelToolCalls: boolean;
  responseFormat: SimResponseFormat | null;
  /** Tool calls made by assistant turns already in the conversation (billed as prompt). */
  historyCalls: { name: string; arguments: string }[];
  images: SimImage[];
  /** The conversation ends with tool results: the model answers them in text rather than calling again. */
  endsWithToolResult: boolean;
  /** Text of the last user turn: what the tool choice and arguments are derived from. */
  lastUserText: string;
}

/** What either wire's messages parser reads off the conversation: the turns to count, and the features they carry. */
export type ParsedMessages = { messages: TokenMessage[] } & Pick<SimFeatures, 'historyCalls' | 'images' | 'endsWithToolResult' | 'lastUserText'>;

export const NO_FEATURES: SimFeatures = {
  tools: [],
  toolChoice: 'auto',
  parallelToolCalls: true,
  responseFormat: null,
  historyCalls: [],
  images: [],
  endsWithToolResult: false,
  lastUserText: '',
};

/** A URL image is billed as if it were 1024×1024: the simulator does not fetch it (the gateway estimates the maximum). */
export const IMAGE_URL_ASSUMED: ImageDimensions = { width: 1024, height: 1024 };

const ANTHROPIC_FACTOR = 1.1;

/** Prompt tokens for tools, earlier tool calls and images, computed as @switchyard/providers estimates them. */
export function extraPromptTokens(f: SimFeatures, provider: TokenProvider): number {
  let extra = countToolDefinitionTokens(f.tools, provider) + countToolCallTokens(f.historyCalls);
  if (f.responseFormat?.type === 'json_schema') extra += countToolDefinitionTokens([{ name: f.responseFormat.name, parameters: f.responseFormat.schema }], 'openai');
  if (provider === 'anthropic') extra = Math.ceil(extra * ANTHROPIC_FACTOR);
  for (const img of f.images) extra += countImageTokens(img.size ?? IMAGE_URL_ASSUMED, provider, img.detail);
  return extra;
}

export interface PlannedCall {
  name: string;
  arguments: string;
}

/**
 * The tool calls the simulated model makes, or none (it answers in text).
 * With tool choice none, or when the conversation ends with tool results
 * (and no specific tool is forced), it answers. Otherwise the tools named in
 * the last user turn are called, in the order they are mentioned (only the
 * first when parallel calls are off); a named choice calls that tool;
 * `required` with no tool mentioned calls the tool picked by the prompt hash;
 * `auto` with none mentioned answers in text.
 */
export function planToolCalls(f: SimFeatures, hash: number): PlannedCall[] {
  if (f.tools.length === 0 || f.toolChoice === 'none') return [];
  const forced = typeof f.toolChoice === 'object' ? f.tools.find((t) => t.name === (f.toolChoice as { name: string }).name) : undefined;
  if (forced) return [{ name: forced.name, arguments: argumentsFor(forced, f.lastUserText, hash) }];
  if (f.endsWithToolResult) return [];
  const text = f.lastUserText;
  let chosen = f.tools
    .map((t) => ({ t, at: text.indexOf(t.name) }))
    .filter((x) => x.at >= 0)
    .sort((a, b) => a.at - b.at)
    .map((x) => x.t);
  if (chosen.length === 0 && f.toolChoice === 'required') chosen = [f.tools[hash % f.tools.length]!];
  if (!f.parallelToolCalls) chosen = chosen.slice(0, 1);
  return chosen.map((t, i) => ({ name: t.name, arguments: argumentsFor(t, text, hash + i) }));
}

function argumentsFor(tool: SimTool, text: string, hash: number): string {
  return JSON.stringify(valueForSchema(tool.parameters, wordsOf(text), hash));
}

/** A JSON answer for a response format: valid against the schema, derived from the conversation. */
export function structuredAnswer(format: SimResponseFormat, text: string, hash: number): string {
  if (format.type === 'json_object') return JSON.stringify({ answer: wordsOf(text).join(' ') || 'simulated' });
  return JSON.stringify(valueForSchema(format.schema, wordsOf(text), hash));
}

function wordsOf(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * A value valid against a JSON Schema (the subset structured output uses:
 * type, properties, required, items, enum, const, anyOf/oneOf/allOf, numeric
 * and length bounds). Every property is filled, so strict schemas (all
 * properties required, no additional ones) are satisfied. Strings take words
 * of the conversation, so arguments depend on what was asked.
 */
export function valueForSchema(schema: unknown, words: string[], hash: number, depth = 0): unknown {
  if (schema === true || schema === undefined || schema === null || typeof schema !== 'object' || depth > 8) return {};
  const s = schema as Record<string, unknown>;
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[hash % s.enum.length];
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(s[key]) && (s[key] as unknown[]).length > 0) return valueForSchema((s[key] as unknown[])[0], words, hash, depth + 1);
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) return valueForSchema(s.allOf[0], words, hash, depth + 1);
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== 'null') ?? s.type[0]) : s.type;
  switch (type) {
    case 'string': {
      const word = words.length > 0 ? words[hash % words.length]! : 'simulated';
      const min = typeof s.minLength === 'number' ? s.minLength : 0;
      const max = typeof s.maxLength === 'number' ? s.maxLength : Infinity;
      return word.padEnd(min, 'x').slice(0, max);
    }
    case 'integer':
    case 'number': {
      const min = typeof s.minimum === 'number' ? Math.ceil(s.minimum) : 0;
      const max = typeof s.maximum === 'number' ? Math.floor(s.maximum) : min + 99;
      return max < min ? min : min + (hash % (max - min + 1));
    }
    case 'boolean':
      return hash % 2 === 0;
    case 'null':
      return null;
    case 'array': {
      const min = typeof s.minItems === 'number' ? s.minItems : 1;
      const n = Math.max(min, typeof s.maxItems === 'number' ? Math.min(1, s.maxItems) : 1);
      return Array.from({ length: n }, (_, i) => valueForSchema(s.items, words, hash + i, depth + 1));
    }
    default: {
      const props = s.properties && typeof s.properties === 'object' ? (s.properties as Record<string, unknown>) : {};
      const out: Record<string, unknown> = {};
      let i = 0;
      for (const [name, sub] of Object.entries(props)) out[name] = valueForSchema(sub, words, hashString(name, hash) + i++, depth + 1);
      return out;
    }
  }
}

/**
 * Splits JSON text into small pieces for streaming (and for a max_tokens cut):
 * roughly token-sized, so a structured answer streams like any other.
 */
export function jsonPieces(text: string): string[] {
  return text.match(/.{1,6}/gsu) ?? [];
}

/** Size of an image given as a URL: read from a base64 data URL's header; undefined for a remote URL. */
export function imageFromUrl(url: string): ImageDimensions | undefined {
  const m = /^data:[^;,]+;base64,(.*)$/s.exec(url);
  return m ? imageFromBase64(m[1]!) : undefined;
}

export function imageFromBase64(data: string): ImageDimensions | undefined {
  return imageDimensions(Buffer.from(data.slice(0, 65_536), 'base64'));
}
