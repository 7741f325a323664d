import { CancelledError, ProviderError, TimeoutAbort, type TimeoutKind } from './errors';
import { classify } from './classify';
import type { HeaderSource } from './rate-limit-headers';
import type { CallOptions } from './types';

/**
 * Owns one attempt's AbortController: links the caller's signal and arms our
 * total / first-token / idle timers, each aborting with a TimeoutAbort so the
 * failure classifies as TIMEOUT (and the SDK tears the socket down) while a
 * caller cancel stays a cancel. Idle time is only counted while we wait on the
 * upstream, not while the consumer holds a yielded chunk.
 */
export class AttemptControl {
  private readonly controller = new AbortController();
  private readonly timers = new Map<TimeoutKind, ReturnType<typeof setTimeout>>();
  private readonly unlinkCaller: () => void = () => {};

  constructor(private readonly opts: CallOptions, streaming: boolean) {
    const caller = opts.signal;
    if (caller) {
      if (caller.aborted) this.controller.abort(caller.reason);
      else {
        const onAbort = () => this.controller.abort(caller.reason);
        caller.addEventListener('abort', onAbort, { once: true });
        this.unlinkCaller = () => caller.removeEventListener('abort', onAbort);
      }
    }
    this.arm('total', opts.timeoutMs);
    if (streaming) this.arm('first-token', opts.firstTokenTimeoutMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Stream headers arrived: the idle clock starts. */
  streamOpened(): void {
    this.arm('idle', this.opts.idleTimeoutMs);
  }

  /** An upstream event arrived. */
  upstreamEvent(): void {
    this.disarm('idle');
  }

  /** Waiting on the upstream again (after the consumer took a chunk). */
  awaitingUpstream(): void {
    this.arm('idle', this.opts.idleTimeoutMs);
  }

  firstDelta(): void {
    this.disarm('first-token');
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.unlinkCaller();
  }

  /**
   * Turns whatever ended the attempt into what complete()/stream() throw:
   * CancelledError for a caller cancel, otherwise a classified ProviderError.
   */
  failure(err: unknown, deployment: string, afterFirstChunk: boolean, headers?: HeaderSource): Error {
    if (err instanceof ProviderError || err instanceof CancelledError) return err;
    const reason = this.controller.signal.aborted ? this.controller.signal.reason : undefined;
    if (this.controller.signal.aborted && !(reason instanceof TimeoutAbort)) return new CancelledError(reason);
    const c = classify(err, { signal: this.controller.signal, afterFirstChunk, ...(headers ? { headers } : {}) });
    if (c === null) return new CancelledError(reason ?? err);
    return new ProviderError(c, err, deployment);
  }

  private arm(kind: TimeoutKind, ms: number | undefined): void {
    if (ms === undefined || this.controller.signal.aborted) return;
    this.disarm(kind);
    this.timers.set(kind, setTimeout(() => this.controller.abort(new TimeoutAbort(kind, ms)), ms));
  }

  private disarm(kind: TimeoutKind): void {
    const t = this.timers.get(kind);
    if (t !== undefined) clearTimeout(t);
    this.timers.delete(kind);
  }
}
