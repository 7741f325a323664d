import { timingSafeEqual } from 'node:crypto';
import { type CallContext, unauthenticated } from '@switchyard/grpc';

export const INTERNAL_TOKEN_HEADER = 'x-switchyard-internal-token';

/**
 * With SWITCHYARD_INTERNAL_TOKEN set, only callers presenting it (the router)
 * may use the service. Constant-time compare: the token is a shared secret.
 */
export function createInternalAuth(token: string | undefined): (ctx: CallContext) => void {
  if (!token) return () => {};
  const expected = Buffer.from(token);
  return (ctx) => {
    const got = ctx.metadata.get(INTERNAL_TOKEN_HEADER)[0];
    const presented = Buffer.from(typeof got === 'string' ? got : '');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      throw unauthenticated(`metadata ${INTERNAL_TOKEN_HEADER}: missing or wrong internal token`);
    }
  };
}
