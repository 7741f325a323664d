import { createHash } from 'node:crypto';
import type { Metadata } from '@switchyard/grpc';
import { orderCandidates, planCandidates, skipSmallContextWindows, type CandidatePlan } from '../domain/candidates';
import type { ChatMessage, ChatRequest } from '@switchyard/providers';
import { fitCandidates, truncateForWindows } from '../domain/fit-candidates';
import { estimateCall, reserveMicros } from '../domain/token-accounting';
import { resolveRoute, validateCall, type CallRequest, type ValidatedCall } from '../domain/validate-request';
import type { KeyOwner, RouterContext } from '../router-context';
import { authenticate, authorizeRoute } from './auth';
import { contextOverflowError, missingCapabilityError } from './caller-errors';
import { deploymentView, type LocalView } from './deployment-view';
import { loopDelayFor } from './loop-delay';
import { requestIdFor } from './request-id';

/** A request that passed auth and validation, with everything the fan-out and the attempt loop need. */
export interface PreparedCall {
  requestId: string;
  owner: KeyOwner;
  call: ValidatedCall;
  plan: CandidatePlan;
  /** The request each candidate receives: the call fitted to it (clamped or dropped parameters). */
  requests: ReadonlyMap<string, ChatRequest>;
  /** What fitting changed for a candidate, for the note of its attempts. */
  fitNotes: ReadonlyMap<string, string>;
  /** Route contextOverflow truncate: messages dropped from the request of each candidate that needed it. */
  truncatedTurns: ReadonlyMap<string, number>;
  /** Estimated prompt tokens per candidate (providers count differently). */
  inputTokens: Map<string, number>;
  /** Worst-case cost at the most expensive usable candidate, micro-USD. */
  reserveMicros: number;
  /** Empty when the call neither reads nor writes the cache (it hashes the whole prompt). */
  cacheKey: string;
  /** Caller deadline as an instant, less the time the request may have waited unread (RouterContext.loopDelay); Infinity when none. */
  deadlineAt: number;
  /** The time the call had when it arrived (its deadline's timeout); Infinity when none. */
  callMs: number;
}

/** What preparing a call reads: the config, the API keys and the local replicas. */
export type PrepareDeps = Pick<RouterContext, 'gateway' | 'keys' | 'defaultMaxTokens' | 'rng' | 'loopDelay'> & LocalView;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** A message's content for the key: images by the hash of their bytes, so a key never holds an image twice (nor at all). */
function canonicalContent(content: ChatMessage['content']): unknown {
  if (typeof content === 'string') return content;
  return content.map((p) => {
    if (p.type === 'text') return ['text', p.text];
    const src = p.source.kind === 'url' ? ['url', p.source.url.startsWith('data:') ? sha256(p.source.url) : p.source.url] : ['data', p.source.mediaType, sha256(p.source.data)];
    return ['image', ...src, p.detail ?? ''];
  });
}

/**
 * Canonical cache key: the route plus a hash of exactly the fields that
 * change the answer: messages (with their tool calls and tool-call ids),
 * sampling parameters, tools, tool choice, parallel calls, response format
 * and seed. A text-only call without those keeps the key it always had.
 */
export function cacheKeyFor(call: ValidatedCall): string {
  const { messages, maxTokens, temperature, topP, stop, tools, toolChoice, parallelToolCalls, responseFormat, seed } = call.chat;
  const canonicalMessages = messages.map((m) =>
    typeof m.content === 'string' && !m.toolCalls && m.toolCallId === undefined
      ? [m.role, m.content]
      : [m.role, canonicalContent(m.content), (m.toolCalls ?? []).map((c) => [c.id, c.name, c.arguments]), m.toolCallId ?? ''],
  );
  const features =
    tools || toolChoice || parallelToolCalls !== undefined || responseFormat || seed !== undefined
      ? { features: { tools: tools ?? [], toolChoice: toolChoice ?? null, parallelToolCalls: parallelToolCalls ?? null, responseFormat: responseFormat ?? null, seed: seed ?? null } }
      : {};
  const canonical = JSON.stringify({ messages: canonicalMessages, maxTokens, temperature: temperature ?? null, topP: topP ?? null, stop: stop ?? [], ...features });
  return `${call.routeName}:${sha256(canonical)}`;
}

/**
 * Steps 1-2 of the call: authenticate, resolve and authorise the route,
 * validate, estimate, plan candidates from the local replicas. Throws
 * AppError, or a FieldError for bad input (INVALID_ARGUMENT at the boundary);
 * nothing has been reserved yet, so bad input is never charged.
 */
export function prepareCall(deps: PrepareDeps, req: CallRequest, metadata: Metadata, deadline: Date | undefined): PreparedCall {
  const callMs = deadline ? deadline.getTime() - deps.clock.now() : Number.POSITIVE_INFINITY;
  const owner = authenticate(deps, metadata);
  const route = resolveRoute(deps.gateway, req.route);
  authorizeRoute(owner, req.route);
  const call = validateCall(req, route, { ...deps.gateway.defaults.requestLimits, defaultMaxTokens: deps.defaultMaxTokens });
  const ordered = orderCandidates(route, deps.gateway.deployments, deps.rng);
  const fitted = fitCandidates(call.chat, ordered);
  const requestId = requestIdFor(metadata);
  // No candidate of the route could ever serve this call: the caller must change it (or the route), not retry.
  if (fitted.fitting.length === 0) throw missingCapabilityError(req.route, fitted.lacking, requestId);
  const truncatedTurns = route.contextOverflow === 'truncate' ? truncateForWindows(fitted) : new Map<string, number>();
  const estimate = estimateCall((c) => fitted.requests.get(c.name)!, fitted.fitting);
  const preferred = fitted.fitting[0]!;
  const preferredTokens = estimate.inputTokens.get(preferred.name) ?? 0;
  // contextOverflow fail: a prompt too long for the route's preferred model is the caller's to shorten, not a reason to change model.
  if (route.contextOverflow === 'fail' && preferredTokens > preferred.deployment.contextWindow) {
    throw contextOverflowError(req.route, preferred.name, preferredTokens, preferred.deployment.contextWindow, requestId);
  }
  const planned = skipSmallContextWindows(
    planCandidates(fitted.fitting, (name) => deploymentView(deps, name), deps.clock.now()),
    (c) => estimate.inputTokens.get(c.name) ?? 0,
  );
  const plan: CandidatePlan = {
    usable: planned.usable,
    skipped: [...planned.skipped, ...fitted.lacking.map((l) => ({ name: l.name, reason: `cannot serve this call: ${l.reason}`, retryAt: 0, quota: false }))],
  };
  return {
    requestId,
    owner,
    call,
    plan,
    requests: fitted.requests,
    fitNotes: fitted.notes,
    truncatedTurns,
    inputTokens: estimate.inputTokens,
    reserveMicros: reserveMicros(estimate, plan.usable),
    cacheKey: call.cache.read || call.cache.write ? cacheKeyFor(call) : '',
    // gRPC sends the deadline as a timeout that starts when the request is read:
    // one that waited unread behind a late event loop has that much less left.
    deadlineAt: deadline ? deadline.getTime() - loopDelayFor(deps.loopDelay, callMs) : Number.POSITIVE_INFINITY,
    callMs,
  };
}

/** The prompt tokens the call's first attempt reserves: on its first usable candidate, or, with none usable now, the most any candidate would. */
export function firstAttemptInputTokens(p: Pick<PreparedCall, 'plan' | 'inputTokens'>): number {
  const first = p.plan.usable[0];
  return first ? (p.inputTokens.get(first.name) ?? 0) : Math.max(0, ...p.inputTokens.values());
}

/** The request an attempt on `c` sends (the call fitted to the candidate). */
export function requestFor(p: Pick<PreparedCall, 'requests' | 'call'>, name: string): ChatRequest {
  return p.requests.get(name) ?? p.call.chat;
}
