import { randomUUID } from 'node:crypto';
import type { Metadata } from '@switchyard/grpc';

/**
 * Request ids chosen before the call reached the router: the HTTP edge's own
 * (its x-request-id), so an HTTP caller sees one id in the header, the
 * answer's id (streamed or not) and the router's logs and events. Keyed by the
 * call's metadata object, which only the in-process edge can hand in: a gRPC
 * caller cannot choose its request id.
 */
const assigned = new WeakMap<Metadata, string>();

export function assignRequestId(metadata: Metadata, requestId: string): void {
  assigned.set(metadata, requestId);
}

export function requestIdFor(metadata: Metadata): string {
  return assigned.get(metadata) ?? randomUUID();
}
