import { hashApiKey } from '@switchyard/config';
import { permissionDenied, unauthenticated, type Metadata } from '@switchyard/grpc';
import type { KeyOwner, RouterContext } from '../router-context';

function first(metadata: Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  if (v === undefined) return undefined;
  const s = (typeof v === 'string' ? v : v.toString('utf8')).trim();
  return s.length > 0 ? s : undefined;
}

/** The caller's API key from `x-api-key`, or `authorization: Bearer <key>`. */
export function apiKeyFrom(metadata: Metadata): string | undefined {
  const direct = first(metadata, 'x-api-key');
  if (direct) return direct;
  const auth = first(metadata, 'authorization');
  const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
  return m?.[1];
}

/** Metadata API key → tenant (keys are stored hashed). UNAUTHENTICATED when missing or unknown. */
export function authenticate(ctx: Pick<RouterContext, 'keys'>, metadata: Metadata): KeyOwner {
  const key = apiKeyFrom(metadata);
  if (!key) throw unauthenticated('missing API key (metadata x-api-key)');
  const owner = ctx.keys.get(hashApiKey(key));
  if (!owner) throw unauthenticated('unknown API key');
  return owner;
}

/** PERMISSION_DENIED when the tenant's config restricts it to other routes. */
export function authorizeRoute(owner: KeyOwner, routeName: string): void {
  if (owner.tenant.routes && !owner.tenant.routes.includes(routeName)) {
    throw permissionDenied(`tenant "${owner.tenantId}" may not use route "${routeName}"`);
  }
}
