/**
 * Time source injected into domain logic so state machines and limiters can be
 * tested step by step without sleeping. Production code uses `systemClock`.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to; for tests and deterministic simulations. */
export class ManualClock implements Clock {
  constructor(private current = 0) {}

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    if (ms < 0) throw new RangeError(`cannot move a clock backwards (advance by ${ms} ms)`);
    this.current += ms;
  }

  set(ms: number): void {
    this.current = ms;
  }
}

/** A clock offset from another; used to prove that replica clock skew changes nothing. */
export function skewedClock(base: Clock, offsetMs: number): Clock {
  return { now: () => base.now() + offsetMs };
}
