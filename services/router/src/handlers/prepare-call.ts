import { createHash, randomUUID } from 'node:crypto';
import type { Metadata } from '@switchyard/grpc';
import { orderCandidates, planCandidates, skipSmallContextWindows, type CandidatePlan } from '../domain/candidates';
import { estimateCall, reserveMicros } from '../domain/token-accounting';
import { resolveRoute, validateCall, type CallRequest, type ValidatedCall } from '../domain/validate-request';
import type { KeyOwner, RouterContext } from '../router-context';
import { authenticate, authorizeRoute } from './auth';
import { deploymentView, type LocalView } from './deployment-view';

/** A request that passed auth and validation, with everything the fan-out and the attempt loop need. */
export interface PreparedCall {
  requestId: string;
  owner: KeyOwner;
  call: ValidatedCall;
  plan: CandidatePlan;
  /** Estimated prompt tokens per candidate (providers count differently). */
  inputTokens: Map<string, number>;
  /** Worst-case cost at the most expensive usable candidate, micro-USD. */
  reserveMicros: number;
  /** Empty when the call neither reads nor writes the cache (it hashes the whole prompt). */
  cacheKey: string;
  /** Caller deadline as an instant; Infinity when none. */
  deadlineAt: number;
}

/** What preparing a call reads: the config, the API keys and the local replicas. */
export type PrepareDeps = Pick<RouterContext, 'gateway' | 'keys' | 'defaultMaxTokens' | 'rng'> & LocalView;

/** Canonical cache key: the route plus a hash of exactly the fields that change the answer. */
export function cacheKeyFor(call: ValidatedCall): string {
  const { messages, maxTokens, temperature, topP, stop } = call.chat;
  const canonical = JSON.stringify({ messages: messages.map((m) => [m.role, m.content]), maxTokens, temperature: temperature ?? null, topP: topP ?? null, stop: stop ?? [] });
  return `${call.routeName}:${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
}

/**
 * Steps 1-2 of the call: authenticate, resolve and authorise the route,
 * validate, estimate, plan candidates from the local replicas. Throws
 * AppError, or a FieldError for bad input (INVALID_ARGUMENT at the boundary);
 * nothing has been reserved yet, so bad input is never charged.
 */
export function prepareCall(deps: PrepareDeps, req: CallRequest, metadata: Metadata, deadline: Date | undefined): PreparedCall {
  const owner = authenticate(deps, metadata);
  const route = resolveRoute(deps.gateway, req.route);
  authorizeRoute(owner, req.route);
  const call = validateCall(req, route, { ...deps.gateway.defaults.requestLimits, defaultMaxTokens: deps.defaultMaxTokens });
  const ordered = orderCandidates(route, deps.gateway.deployments, deps.rng);
  const estimate = estimateCall(call.chat, ordered);
  const plan = skipSmallContextWindows(
    planCandidates(ordered, (name) => deploymentView(deps, name), deps.clock.now()),
    (c) => estimate.inputTokens.get(c.name) ?? 0,
  );
  return {
    requestId: randomUUID(),
    owner,
    call,
    plan,
    inputTokens: estimate.inputTokens,
    reserveMicros: reserveMicros(estimate, plan.usable),
    cacheKey: call.cache.read || call.cache.write ? cacheKeyFor(call) : '',
    deadlineAt: deadline ? deadline.getTime() : Number.POSITIVE_INFINITY,
  };
}
