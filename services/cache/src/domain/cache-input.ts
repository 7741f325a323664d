import { FieldError } from '@switchyard/util';

/** A caller mistake; `field` is the proto field path, so the gRPC error (INVALID_ARGUMENT) names it. */
export class CacheInputError extends FieldError {
  override readonly name = 'CacheInputError';
}

/** Tenant ids as the config allows them (`NAME_PATTERN`); they become a Redis hash tag. */
const TENANT = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_KEY_BYTES = 512;
export const MAX_LEASE_TTL_MS = 300_000;
export const MAX_WAIT_MS = 60_000;

export function tenantOf(tenant: string): string {
  if (!tenant) throw new CacheInputError('tenant', 'is required');
  if (!TENANT.test(tenant)) throw new CacheInputError('tenant', 'must be 1-64 characters of A-Z a-z 0-9 _ -');
  return tenant;
}

export function keyOf(field: string, key: string, allowEmpty = false): string {
  if (!key && !allowEmpty) throw new CacheInputError(field, 'is required');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new CacheInputError(field, `must be at most ${MAX_KEY_BYTES} bytes`);
  return key;
}

export function atMost(field: string, value: number, max: number): number {
  if (value > max) throw new CacheInputError(field, `must be at most ${max}, got ${value}`);
  return value;
}
