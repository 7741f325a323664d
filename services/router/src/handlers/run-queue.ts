import { performance } from 'node:perf_hooks';
import type { LagSource } from './load-shed';

/**
 * Admitted calls' CPU work, run in slices so the event loop keeps reading
 * its sockets while it is busy.
 *
 * Node runs every I/O callback a poll returns, and all the work they start,
 * before it polls again. In front of a fast upstream the calls in flight fall
 * into step: 32 answers arrive together and their 32 continuations (parse,
 * account, encode, write) run back to back, so a call arriving meanwhile is
 * read, and refused if the router is full, only a whole wave later. Each
 * admitted call instead waits its turn here when its provider's answer
 * arrives, before that work, and on admission when others are already
 * waiting (load-shed.ts shedExcess): each turn is a setImmediate,
 * and once a loop iteration has run `sliceMs` of turns the rest go to the
 * next iteration, after the next poll. Refusals and new arrivals are read
 * between slices, not after the wave.
 *
 * What the excess would have paid in loop delay it now pays as time waiting
 * for a turn, so the queue is also the load shedder's measure of overload
 * (`takeWorstMs`: the longest wait since the last take).
 */
export interface RunQueue extends LagSource {
  /** Resolves when this call's work may run. */
  turn(): Promise<void>;
  /** Calls waiting for their turn now. */
  readonly waiting: number;
}

/** `onWait`: each turn's wait in ms, as it is given (metrics). */
export function createRunQueue(sliceMs: number, clock: () => number = () => performance.now(), onWait: (ms: number) => void = () => {}): RunQueue {
  if (!(sliceMs > 0)) throw new Error(`run-queue slice must be > 0 ms, got ${sliceMs}`);
  /** When the current iteration's slice began; undefined between slices. */
  let sliceStart: number | undefined;
  let worst = 0;
  let waiting = 0;
  // Queued by the first turn of a slice, so it runs first in the next loop
  // iteration's check phase, ahead of everything deferred from this one.
  const endSlice = () => {
    sliceStart = undefined;
  };
  const run = (resolve: () => void, since: number) => {
    const now = clock();
    if (sliceStart === undefined) {
      sliceStart = now;
      setImmediate(endSlice);
    } else if (now - sliceStart >= sliceMs) {
      setImmediate(run, resolve, since);
      return;
    }
    worst = Math.max(worst, now - since);
    onWait(now - since);
    waiting -= 1;
    resolve();
  };
  return {
    turn() {
      waiting += 1;
      return new Promise<void>((resolve) => setImmediate(run, resolve, clock()));
    },
    get waiting() {
      return waiting;
    },
    takeWorstMs() {
      const w = worst;
      worst = 0;
      return w;
    },
  };
}

/** The worse of two overload measures, e.g. the event loop's delay and the run queue's wait. */
export function worstOf(a: LagSource, b: LagSource): LagSource {
  return { takeWorstMs: () => Math.max(a.takeWorstMs(), b.takeWorstMs()) };
}
