import { FieldError } from '@switchyard/util';
import type { Classification } from './error-class';

/**
 * Thrown by complete()/stream() for every provider-side failure. The
 * classification is computed once, here, so every consumer (retry loop,
 * breaker report, limiter observe, gRPC error details) acts on the same answer.
 */
export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly classification: Classification;
  override readonly cause: unknown;
  /** Deployment name the attempt went to. */
  readonly deployment: string | undefined;

  constructor(classification: Classification, cause?: unknown, deployment?: string) {
    super(`${deployment ? `${deployment}: ` : ''}${classification.errorClass}: ${classification.message}`);
    this.classification = classification;
    this.cause = cause;
    this.deployment = deployment;
  }
}

export function isProviderError(err: unknown): err is ProviderError {
  return err instanceof ProviderError;
}

export type TimeoutKind = 'total' | 'first-token' | 'idle';

/**
 * The abort reason we use for our own timeouts. Using a distinct reason (not a
 * bare AbortController.abort()) is what lets a timeout classify as TIMEOUT
 * while a caller's cancel stays a cancel.
 */
export class TimeoutAbort extends Error {
  override readonly name = 'TimeoutAbort';
  constructor(
    readonly kind: TimeoutKind,
    readonly afterMs: number,
  ) {
    super(`${kind} timeout after ${afterMs} ms`);
  }
}

export function isTimeoutAbort(value: unknown): value is TimeoutAbort {
  return value instanceof TimeoutAbort;
}

/**
 * The caller cancelled (its signal aborted with anything but a TimeoutAbort).
 * Deliberately NOT a ProviderError and not an error class: a cancel says
 * nothing about the provider's health, so it must never reach the breaker,
 * the retry loop or the limiter's failure accounting. `name` is 'AbortError'
 * so generic abort handling recognises it.
 */
export class CancelledError extends Error {
  override readonly name = 'AbortError';
  constructor(readonly reason: unknown) {
    super(`request cancelled by caller${reason instanceof Error && reason.message ? `: ${reason.message}` : ''}`);
  }
}

export function isCancelledError(err: unknown): err is CancelledError {
  return err instanceof CancelledError;
}

/**
 * Bad neutral input (or deployment config): names the field and the problem.
 * A FieldError, so a server that lets it escape answers INVALID_ARGUMENT.
 */
export class InvalidChatRequestError extends FieldError {
  override readonly name: string = 'InvalidChatRequestError';
}

/**
 * The upstream closed a 200 stream without its terminal event (OpenAI
 * finish_reason, Anthropic message_stop). Classifies as NETWORK (and so as
 * STREAM_INTERRUPTED once text was delivered): a stream that merely stops is
 * a cut connection as far as the caller is concerned, never a clean end.
 */
export class IncompleteStreamError extends Error {
  override readonly name = 'IncompleteStreamError';
}
