import { createHash, timingSafeEqual } from 'node:crypto';
import { isLoopbackHost } from '@switchyard/util';
import { permissionDenied, unauthenticated } from './app-error';
import type { AccessLevel, CallContext } from './types';

/** Metadata carrying the caller's token: the router's internal token, or an operator's. */
export const INTERNAL_TOKEN_METADATA = 'x-switchyard-internal-token';

/** The secrets an internal service checks (DESIGN "Security": internal services accept only the router). */
export interface InternalAuth {
  /** The router's shared secret. Unset: no check at all, which only a loopback bind allows. */
  internalToken?: string;
  /**
   * The operators' secret, needed for `operator` methods; must differ from the
   * internal token. Unset (with an internal token): `operator` methods are refused.
   */
  operatorToken?: string;
}

/** Checks one call against the level its method requires; throws the status to answer. */
export type AccessGuard = (ctx: CallContext, level: AccessLevel) => void;

// Digests have one length whatever was presented, so the comparison leaks neither
// the token's length nor how much of it matched.
const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** Why these settings must not serve `host`, or undefined when they may. */
export function exposureProblem(host: string, auth: InternalAuth): string | undefined {
  if (auth.internalToken || isLoopbackHost(host)) return undefined;
  return (
    `host ${host} is not a loopback address: refusing to serve an internal service there without an internal token ` +
    '(anyone who can reach the port could call it); configure the token (SWITCHYARD_INTERNAL_TOKEN) or bind 127.0.0.1'
  );
}

/**
 * The per-call check of an internal service. Without an internal token there
 * is nothing to check (undefined). With one, a call must present a known token
 * (UNAUTHENTICATED otherwise) that its method's level admits (PERMISSION_DENIED
 * otherwise); both tokens are compared in constant time on every call.
 */
export function createAccessGuard(auth: InternalAuth): AccessGuard | undefined {
  const { internalToken, operatorToken } = auth;
  if (!internalToken) {
    if (operatorToken) throw new Error('auth.operatorToken: set without auth.internalToken; set both (the operator token only narrows what the internal token allows)');
    return undefined;
  }
  if (operatorToken === internalToken) throw new Error('auth.operatorToken: must differ from auth.internalToken (a leaked router credential must not be an operator credential)');
  const router = digest(internalToken);
  const operator = operatorToken ? digest(operatorToken) : undefined;
  return (ctx, level) => {
    const got = ctx.metadata.get(INTERNAL_TOKEN_METADATA)[0];
    const presented = digest(typeof got === 'string' ? got : '');
    const isRouter = timingSafeEqual(presented, router);
    const isOperator = operator !== undefined && timingSafeEqual(presented, operator);
    if (!isRouter && !isOperator) throw unauthenticated(`metadata ${INTERNAL_TOKEN_METADATA}: missing or wrong internal token`);
    if (level === 'either') return;
    if (level === 'router' && !isRouter) {
      throw permissionDenied(`${ctx.path}: a router call; the operator token does not grant it (it needs the router's internal token)`);
    }
    if (level === 'operator' && !isOperator) {
      throw permissionDenied(
        operator
          ? `${ctx.path}: an operator call; it needs the operator token (SWITCHYARD_OPERATOR_TOKEN), not the router's internal token`
          : `${ctx.path}: an operator call, and this service has no operator token configured (set SWITCHYARD_OPERATOR_TOKEN to allow it)`,
      );
    }
  };
}
