import { countChatTokens, countImageTokens, countToolCallTokens, countToolDefinitionTokens, imageDimensions } from '@switchyard/tokens';
import { structuredOutputTool } from './anthropic-translate';
import { InvalidChatRequestError } from './errors';
import { messageImages, messageText, parseDataUrl } from './message-content';
import { validateChatRequest } from './validate';
import type { ChatRequest, ImagePart, ProviderKind, Usage } from './types';

export interface RequestTokenEstimate {
  /** Prompt tokens as the provider will bill them (framing included), from @switchyard/tokens. */
  inputTokens: number;
  /** Worst case: the request's maxTokens. */
  outputTokens: number;
  /** inputTokens + outputTokens: what the limiter acquires and the budget reserves before the call. */
  totalTokens: number;
}

/**
 * Pre-call estimate for limiter `Acquire` and budget `Reserve`. Uses the same
 * tokenizer the simulator bills with, so estimates and settlements agree in
 * tests; output is the worst case (maxTokens) because that is what may be spent.
 */
export function estimateRequestTokens(req: ChatRequest, provider: ProviderKind): RequestTokenEstimate {
  // Structure only: provider ranges are fitRequest's business (it clamps per candidate), not a reason to fail the estimate.
  validateChatRequest(req);
  const inputTokens = countRequestInputTokens(req, provider);
  return { inputTokens, outputTokens: req.maxTokens, totalTokens: inputTokens + req.maxTokens };
}

/** Anthropic's tokenizer runs ~10 % above o200k (see @switchyard/tokens); applied to tool text as to message text. */
const ANTHROPIC_FACTOR = 1.1;

/**
 * Prompt tokens of a whole request on `provider`: framed message text
 * (countChatTokens), tool definitions (and the forced structured-output tool
 * Anthropic is sent), tool calls in assistant turns, and images by the
 * provider's image rule (inline bytes: dimensions from the header; URLs: the
 * documented maximum). An upper bound of what the provider bills, within the
 * text approximation of countChatTokens.
 */
export function countRequestInputTokens(req: ChatRequest, provider: ProviderKind): number {
  const text = countChatTokens(
    req.messages.map((m) => ({ role: m.role, content: messageText(m) })),
    provider,
  );
  const forced = provider === 'anthropic' ? structuredOutputTool(req, false) : undefined;
  const tools = forced ? [{ name: forced.name, description: 'Give the answer as this tool\'s input.', parameters: forced.schema }] : (req.tools ?? []);
  let extra = countToolDefinitionTokens(tools, provider);
  if (req.responseFormat?.type === 'json_schema' && !forced) extra += countToolDefinitionTokens([{ name: req.responseFormat.name, parameters: req.responseFormat.schema }], 'openai');
  for (const m of req.messages) if (m.toolCalls?.length) extra += countToolCallTokens(m.toolCalls);
  if (provider === 'anthropic') extra = Math.ceil(extra * ANTHROPIC_FACTOR);
  let images = 0;
  for (const m of req.messages) for (const img of messageImages(m)) images += countImageTokens(imageSize(img), provider, img.detail);
  return text + extra + images;
}

/** Dimensions of an inline image (base64 or data URL); undefined for a URL the gateway does not fetch. */
export function imageSize(img: ImagePart): { width: number; height: number } | undefined {
  const inline = img.source.kind === 'base64' ? img.source : parseDataUrl(img.source.url);
  if (!inline) return undefined;
  // 64 KiB of base64 covers any PNG/GIF/WebP header and JPEG files whose metadata segments precede the frame header.
  return imageDimensions(Buffer.from(inline.data.slice(0, 65_536), 'base64'));
}

export interface Price {
  /** USD per million input tokens. */
  inputPerMillion: number;
  /** USD per million output tokens. */
  outputPerMillion: number;
}

const MICROS_PER_USD = 1_000_000n;
const TOKENS_PER_MILLION = 1_000_000n;

/**
 * Cost in integer micro-dollars (1e-6 USD). Prices are converted to integer
 * micro-dollars per million tokens once (rounded to the nearest micro-dollar:
 * every real price list is exact at that precision), then the product is
 * computed in BigInt and divided with ceiling. Summing floats like
 * 0.15/1e6 * tokens across millions of calls drifts; integers do not, and
 * rounding up means a budget is never under-reserved by a fraction.
 */
export function estimateCostMicros(usage: Usage, price: Price): number {
  checkCount(usage?.inputTokens, 'usage.inputTokens');
  checkCount(usage?.outputTokens, 'usage.outputTokens');
  const inMicros = priceMicros(price?.inputPerMillion, 'price.inputPerMillion');
  const outMicros = priceMicros(price?.outputPerMillion, 'price.outputPerMillion');
  const total = ceilDiv(BigInt(usage.inputTokens) * inMicros, TOKENS_PER_MILLION) + ceilDiv(BigInt(usage.outputTokens) * outMicros, TOKENS_PER_MILLION);
  return Number(total);
}

/** Cost in USD (= estimateCostMicros / 1e6); a float only at the edge, for display and protobuf doubles. */
export function estimateCost(usage: Usage, price: Price): number {
  return estimateCostMicros(usage, price) / Number(MICROS_PER_USD);
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

function checkCount(v: unknown, field: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidChatRequestError(field, `must be a non-negative integer (got ${String(v)})`);
  }
}

function priceMicros(v: unknown, field: string): bigint {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new InvalidChatRequestError(field, `must be a non-negative finite number of USD (got ${String(v)})`);
  }
  return BigInt(Math.round(v * Number(MICROS_PER_USD)));
}
