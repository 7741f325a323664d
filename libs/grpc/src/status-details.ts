import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { anyIs, anyPack, anyUnpack, type Any } from '@bufbuild/protobuf/wkt';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  BadRequestSchema,
  ErrorInfoSchema,
  PreconditionFailureSchema,
  QuotaFailureSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
  StatusSchema,
} from '@switchyard/contracts';
import type { ErrorDetails } from './app-error';
import { boundDetailStrings, boundText, dropOneEntry, STATUS_BOUNDS } from './status-bounds';

/** Trailer in which gRPC carries a binary google.rpc.Status with typed details. */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

function encodeStatus(code: status, message: string, details: ErrorDetails): Uint8Array {
  const packed: Any[] = [];
  if (details.badRequest?.length) {
    packed.push(anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations: details.badRequest })));
  }
  if (details.quotaFailure?.length) {
    packed.push(anyPack(QuotaFailureSchema, create(QuotaFailureSchema, { violations: details.quotaFailure })));
  }
  if (details.preconditionFailure?.length) {
    packed.push(anyPack(PreconditionFailureSchema, create(PreconditionFailureSchema, { violations: details.preconditionFailure })));
  }
  if (details.retryDelayMs !== undefined) {
    const ms = Math.max(0, Math.round(details.retryDelayMs));
    const retryDelay = create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 });
    packed.push(anyPack(RetryInfoSchema, create(RetryInfoSchema, { retryDelay })));
  }
  if (details.errorInfo) {
    packed.push(anyPack(ErrorInfoSchema, create(ErrorInfoSchema, details.errorInfo)));
  }
  if (details.resourceInfo) {
    packed.push(anyPack(ResourceInfoSchema, create(ResourceInfoSchema, details.resourceInfo)));
  }
  return toBinary(StatusSchema, create(StatusSchema, { code, message, details: packed }));
}

/** A status cut to fit the trailers: the message to send as grpc-message, and the google.rpc.Status carrying it. */
export interface BoundedStatus {
  message: string;
  bytes: Uint8Array;
}

/**
 * Encodes code, message and details as a binary google.rpc.Status within
 * STATUS_BOUNDS: every string cut (saying its original length), each list
 * capped, and whole entries dropped from the longest list until the encoding
 * fits; the message then says how many entries were left out.
 */
export function encodeBoundedStatus(code: status, message: string, details: ErrorDetails): BoundedStatus {
  const bounded = boundDetailStrings(details);
  let omitted = bounded.omitted;
  for (;;) {
    const note = omitted === 0 ? '' : ` (${omitted} detail entries omitted)`;
    const text = boundText(message, STATUS_BOUNDS.messageBytes - note.length) + note;
    const bytes = encodeStatus(code, text, bounded.details);
    if (bytes.length <= STATUS_BOUNDS.statusBytes || !dropOneEntry(bounded.details)) return { message: text, bytes };
    omitted += 1;
  }
}

/** Encodes code, message and details as a binary google.rpc.Status, bounded as encodeBoundedStatus says. */
export function encodeStatusDetails(code: status, message: string, details: ErrorDetails): Uint8Array {
  return encodeBoundedStatus(code, message, details).bytes;
}

/** Decodes a binary google.rpc.Status into our plain details shape; unknown detail types are skipped. */
export function decodeStatusDetails(bytes: Uint8Array): { code: number; message: string; details: ErrorDetails } {
  const decoded = fromBinary(StatusSchema, bytes);
  const details: ErrorDetails = {};
  for (const any of decoded.details) {
    if (anyIs(any, BadRequestSchema)) {
      details.badRequest = anyUnpack(any, BadRequestSchema)!.fieldViolations.map(({ field, description }) => ({ field, description }));
    } else if (anyIs(any, QuotaFailureSchema)) {
      details.quotaFailure = anyUnpack(any, QuotaFailureSchema)!.violations.map(({ subject, description }) => ({ subject, description }));
    } else if (anyIs(any, PreconditionFailureSchema)) {
      details.preconditionFailure = anyUnpack(any, PreconditionFailureSchema)!.violations.map(({ type, subject, description }) => ({
        type,
        subject,
        description,
      }));
    } else if (anyIs(any, RetryInfoSchema)) {
      const delay = anyUnpack(any, RetryInfoSchema)!.retryDelay;
      details.retryDelayMs = delay ? Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1_000_000) : 0;
    } else if (anyIs(any, ErrorInfoSchema)) {
      const { reason, domain, metadata } = anyUnpack(any, ErrorInfoSchema)!;
      details.errorInfo = { reason, domain, metadata: { ...metadata } };
    } else if (anyIs(any, ResourceInfoSchema)) {
      const { resourceType, resourceName, owner, description } = anyUnpack(any, ResourceInfoSchema)!;
      details.resourceInfo = { resourceType, resourceName, owner, description };
    }
  }
  return { code: decoded.code, message: decoded.message, details };
}

/** A gRPC failure as a caller sees it. */
export interface ParsedGrpcError {
  code: status;
  message: string;
  details: ErrorDetails;
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as ServiceError).code === 'number' && (err as ServiceError).metadata instanceof Metadata;
}

/**
 * Turns whatever a client call rejected with into `{ code, message, details }`,
 * decoding google.rpc details from the `grpc-status-details-bin` trailer. A
 * non-gRPC error (e.g. a bug in the caller) becomes UNKNOWN with its message.
 */
export function parseGrpcError(err: unknown): ParsedGrpcError {
  if (!isServiceError(err)) {
    const maybeCode: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
    const code = typeof maybeCode === 'number' ? (maybeCode as status) : status.UNKNOWN;
    return { code, message: err instanceof Error ? err.message : String(err), details: {} };
  }
  const message = err.details ?? err.message;
  const bin = err.metadata.get(STATUS_DETAILS_KEY)[0];
  if (bin === undefined || typeof bin === 'string') return { code: err.code, message, details: {} };
  try {
    return { code: err.code, message, details: decodeStatusDetails(bin).details };
  } catch {
    // A malformed trailer must not hide the status itself.
    return { code: err.code, message, details: {} };
  }
}
