import { randomBytes } from 'node:crypto';

/**
 * Reservation ids carry their tenant (`<tenant>.<random>`): Commit and Release
 * receive only the id, and the tenant names the Redis hash tag every key of
 * that tenant lives under, so the settle script can run without a lookup table.
 * Tenant ids are `[A-Za-z0-9_-]` (config NAME_PATTERN), so `.` never occurs in them.
 */
export function newReservationId(tenant: string): string {
  return `${tenant}.${randomBytes(12).toString('base64url')}`;
}

const ID_PATTERN = /^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{8,64})$/;

/** The tenant of a reservation id, or undefined when the id is not one we issued. */
export function reservationTenant(id: string): string | undefined {
  return ID_PATTERN.exec(id)?.[1];
}
