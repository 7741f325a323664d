import { fitRequest, resolveCapabilities, type ChatRequest, type MissingCapability } from '@switchyard/providers';
import { truncateToWindow } from './truncate-context';
import type { Candidate } from './candidates';

/** A candidate that cannot serve the call at all (it lacks a capability the call needs). */
export interface LackingCandidate {
  name: string;
  missing: MissingCapability;
  reason: string;
}

/** The call as each candidate will receive it. */
export interface FittedCandidates {
  /** Candidates that can serve the call, in the order given. */
  fitting: Candidate[];
  /** The request to send to each fitting candidate (the caller's own object where nothing changed). */
  requests: Map<string, ChatRequest>;
  /** What was changed for a candidate (clamped, dropped), for its attempt's note; absent when nothing. */
  notes: Map<string, string>;
  lacking: LackingCandidate[];
}

/**
 * Fits the validated call to every candidate (libs/providers fitRequest with
 * the deployment's declared capabilities): a parameter outside one
 * provider's range is adjusted for that candidate only, and a candidate that
 * cannot honour the call is set aside before anything is sent.
 */
export function fitCandidates(chat: ChatRequest, ordered: readonly Candidate[]): FittedCandidates {
  const out: FittedCandidates = { fitting: [], requests: new Map(), notes: new Map(), lacking: [] };
  for (const c of ordered) {
    const fit = fitRequest(chat, { provider: c.deployment.provider, capabilities: resolveCapabilities(c.deployment.provider, c.deployment.capabilities) });
    if (!fit.ok) {
      out.lacking.push({ name: c.name, missing: fit.missing, reason: fit.reason });
      continue;
    }
    out.fitting.push(c);
    // Unchanged requests stay the same object, so estimates are shared per provider kind.
    out.requests.set(c.name, fit.notes.length > 0 ? fit.request : chat);
    if (fit.notes.length > 0) out.notes.set(c.name, fit.notes.join('; '));
  }
  return out;
}

/**
 * Route `contextOverflow: truncate`: every fitting candidate whose context
 * window cannot hold the prompt gets the conversation with its oldest turns
 * dropped until the estimate fits (domain/truncate-context.ts), said in its
 * note. Returns how many turns each truncated candidate lost. A candidate
 * that cannot hold even the system prompt and the latest turn keeps the
 * whole request, and is skipped as too small like any other.
 */
export function truncateForWindows(fitted: FittedCandidates): Map<string, number> {
  const dropped = new Map<string, number>();
  for (const c of fitted.fitting) {
    const t = truncateToWindow(fitted.requests.get(c.name)!, c.deployment.provider, c.deployment.contextWindow);
    if (!t || t.droppedTurns === 0) continue;
    fitted.requests.set(c.name, t.request);
    const note = `dropped the ${t.droppedTurns} oldest message(s) to fit the context window of ${c.deployment.contextWindow} tokens`;
    const earlier = fitted.notes.get(c.name);
    fitted.notes.set(c.name, earlier ? `${earlier}; ${note}` : note);
    dropped.set(c.name, t.droppedTurns);
  }
  return dropped;
}
