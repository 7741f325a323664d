import { timingSafeEqual } from 'node:crypto';
import { unauthenticated } from './app-error';
import type { CallContext } from './types';

/** Metadata the router sends to internal services when a shared secret is configured. */
export const INTERNAL_TOKEN_METADATA = 'x-switchyard-internal-token';

/**
 * DESIGN "Security": internal services accept only the router. With a token
 * configured, every call must present it; compared in constant time because it
 * is a shared secret. Health and reflection stay open for probes.
 */
export function internalTokenGuard(token: string): (ctx: CallContext) => void {
  const expected = Buffer.from(token);
  return (ctx) => {
    const got = ctx.metadata.get(INTERNAL_TOKEN_METADATA)[0];
    const presented = Buffer.from(typeof got === 'string' ? got : '');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
      throw unauthenticated(`metadata ${INTERNAL_TOKEN_METADATA}: missing or wrong internal token`);
    }
  };
}
