import type { IncomingHttpHeaders } from 'node:http';
import type { TokenMessage, TokenProvider } from '@switchyard/tokens';
import type { LimitSnapshot, Rejection } from './rate-limits';
import type { FaultKind } from './scenario';
import type { SimFeatures } from './tools';

/** A chat request normalised from any provider's wire shape. */
export interface ChatRequest {
  deployment: string;
  messages: TokenMessage[];
  /** max_tokens / max_completion_tokens, or null when the caller gave none. */
  maxTokens: number | null;
  stream: boolean;
  /** OpenAI stream_options.include_usage. */
  includeUsage: boolean;
  stop: string[];
  /** Azure api-version query parameter. */
  apiVersion?: string;
  /** Tools, structured output, tool turns and images (NO_FEATURES for a plain chat). */
  features: SimFeatures;
}

/** A complete non-2xx answer. */
export interface ErrorReply {
  status: number;
  body: string;
}

export interface FaultContext {
  deployment: string;
  model: string;
  apiKey: string;
  promptTokens: number;
  contextWindow: number;
  retryAfterMs: number;
  /** Configured RPM, quoted by injected rate-limit messages (a plausible figure when unlimited). */
  rpmLimit: number | null;
  apiVersion?: string;
}

/** What a successful answer needs, whatever the wire shape. */
export interface Completion {
  id: string;
  created: number;
  model: string;
  text: string;
  pieces: string[];
  finish: 'stop' | 'length' | 'stop_sequence' | 'content_filter' | 'tool_calls';
  /** Tool calls the answer makes (then text is empty and finish is tool_calls); arguments are JSON text. */
  toolCalls: { id: string; name: string; arguments: string }[];
  stopSequence: string | null;
  promptTokens: number;
  completionTokens: number;
  /** OpenAI stream_options.include_usage (ignored elsewhere). */
  includeUsage: boolean;
}

/**
 * One provider's wire format. The server runs the same admission pipeline for
 * every provider and asks the dialect only for shapes: bodies, headers, SSE.
 */
export interface Dialect {
  readonly name: 'openai' | 'azure' | 'anthropic';
  readonly tokenProvider: TokenProvider;
  /** The caller's key, or undefined when none was sent. */
  apiKey(headers: IncomingHttpHeaders): string | undefined;
  /** Provider checks before the body is read (e.g. anthropic-version, api-version); null when fine. */
  preflight(headers: IncomingHttpHeaders, query: string): ErrorReply | null;
  missingKey(): ErrorReply;
  invalidJson(): ErrorReply;
  parse(body: unknown, pathDeployment: string | undefined, query: string): ChatRequest | ErrorReply;
  /** Error answer for an injected fault (every kind except hang, reset, content_filter). */
  fault(kind: FaultKind, ctx: FaultContext): ErrorReply;
  rateLimited(rejection: Rejection, ctx: FaultContext): ErrorReply;
  /** Final touch on an error body once the answer's headers (request id) exist; identity for OpenAI. */
  stampError(body: string, headers: Record<string, string>): string;
  /** Request-id headers and any other per-answer identity headers. */
  baseHeaders(): Record<string, string>;
  addLimitHeaders(headers: Record<string, string>, snapshot: LimitSnapshot, now: number): void;
  newId(): string;
  /** A tool-call id in the provider's own shape (call_…, toolu_…). */
  newToolCallId(): string;
  completion(c: Completion): string;
  stream: {
    /** Frames sent as soon as the stream opens (before the first token). */
    open(c: Completion): string;
    /** Frame(s) carrying one content piece; `index` counts content chunks from 0. */
    delta(c: Completion, piece: string, index: number): string;
    /** Frames streaming the answer's tool calls, after the text deltas (one array entry per chunk). */
    toolFrames(c: Completion): string[];
    /** Closing frames after the last piece. */
    close(c: Completion): string;
    /** Mid-stream error frame. */
    error(): string;
  };
}

export function isErrorReply(v: ChatRequest | ErrorReply): v is ErrorReply {
  return typeof (v as ErrorReply).status === 'number';
}

/** Process-unique, cheap ids: a random prefix per process plus a counter (no crypto call per request). */
export function createIdSource(alphabet: string, randomLength: number) {
  let prefix = '';
  for (let i = 0; i < randomLength; i++) prefix += alphabet[Math.floor(Math.random() * alphabet.length)];
  let counter = 0;
  return () => prefix + (++counter).toString(16).padStart(10, '0');
}

/** Text of a message content that may be a string or a list of parts ({type:'text', text}). */
export function contentText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    let out = '';
    for (const part of content) {
      if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') out += (part as { text: string }).text;
    }
    return out;
  }
  return null;
}
