import { estimateRequestTokens, type ChatMessage, type ChatRequest, type ProviderKind } from '@switchyard/providers';

/** The request cut to fit a context window, and how many messages were dropped for it. */
export interface Truncation {
  request: ChatRequest;
  /** Messages dropped from the start of the conversation (0: it fitted as it was). */
  droppedTurns: number;
  /** Estimated prompt tokens of `request`. */
  inputTokens: number;
}

/**
 * The conversation after its leading system messages, as the units that can
 * be dropped together: one message, or an assistant turn with tool calls
 * together with the tool results that answer it (a provider rejects a call
 * without its result and a result without its call).
 */
function droppableUnits(messages: readonly ChatMessage[], from: number): number[] {
  const starts: number[] = [];
  for (let i = from; i < messages.length; i++) {
    if (messages[i]!.role === 'tool' && starts.length > 0) continue;
    starts.push(i);
  }
  return starts;
}

/**
 * Drops the oldest turns of `req` until its estimated prompt fits `window`
 * tokens on `provider`: the system prompt is kept, the latest turn is never
 * dropped, a tool call stays with its results, and the conversation left
 * starts with a user turn (both providers require it). Undefined when even
 * the system prompt and the latest turn do not fit. The fewest turns are
 * dropped: a binary search over how many units go, each probe one estimate.
 */
export function truncateToWindow(req: ChatRequest, provider: ProviderKind, window: number): Truncation | undefined {
  const full = estimateRequestTokens(req, provider).inputTokens;
  if (full <= window) return { request: req, droppedTurns: 0, inputTokens: full };
  const messages = req.messages;
  let systemEnd = 0;
  while (systemEnd < messages.length && messages[systemEnd]!.role === 'system') systemEnd++;
  const units = droppableUnits(messages, systemEnd);
  // Candidate cut points: the start of a unit that is a user turn, after at least one unit dropped.
  const cuts = units.slice(1).filter((start) => messages[start]!.role === 'user');
  const tryCut = (start: number): Truncation => {
    const request: ChatRequest = { ...req, messages: [...messages.slice(0, systemEnd), ...messages.slice(start)] };
    return { request, droppedTurns: start - systemEnd, inputTokens: estimateRequestTokens(request, provider).inputTokens };
  };
  let lo = 0;
  let hi = cuts.length - 1;
  let best: Truncation | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = tryCut(cuts[mid]!);
    if (t.inputTokens <= window) {
      best = t;
      hi = mid - 1;
    } else {
      lo = mid + 1;
    }
  }
  return best;
}
