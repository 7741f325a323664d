import { ManualClock } from '@switchyard/util';
import { type GcraState, gcraAdjust, gcraTake, gcraUsage } from './gcra';

/** Admits `cost` units as often as possible at the current instant; returns how many were admitted. */
function burst(state: { s: GcraState | undefined }, limit: number, cost: number, now: number, tries = 10_000): number {
  let admitted = 0;
  for (let i = 0; i < tries; i++) {
    const d = gcraTake(state.s, limit, cost, now);
    if (!d.allowed) break;
    state.s = d.next;
    admitted++;
  }
  return admitted;
}

describe('GCRA', () => {
  it.each([1, 7, 10, 13, 60, 1_000, 999_983])('admits exactly %i at once for a per-minute limit of %i', (limit) => {
    const clock = new ManualClock(1_000);
    expect(burst({ s: undefined }, limit, 1, clock.now(), limit + 10)).toBe(limit);
  });

  it('refills one unit per period/limit, never at a window edge', () => {
    const clock = new ManualClock(0);
    const st = { s: undefined as GcraState | undefined };
    expect(burst(st, 10, 1, clock.now())).toBe(10);
    const denied = gcraTake(st.s, 10, 1, clock.now());
    expect(denied).toMatchObject({ allowed: false, retryAfterMs: 6_000 });
    clock.advance(5_999);
    expect(gcraTake(st.s, 10, 1, clock.now())).toMatchObject({ allowed: false, retryAfterMs: 1 });
    clock.advance(1);
    expect(burst(st, 10, 1, clock.now())).toBe(1);
    // A full minute idle refills the whole burst, and no more.
    clock.advance(600_000);
    expect(burst(st, 10, 1, clock.now())).toBe(10);
  });

  it('admits the sustained rate over a long run: RPM 7 gives 7 + 7 per minute', () => {
    const clock = new ManualClock(0);
    const st = { s: undefined as GcraState | undefined };
    let admitted = 0;
    for (let t = 0; t <= 60_000; t += 100) {
      clock.set(t);
      admitted += burst(st, 7, 1, clock.now());
    }
    // Initial burst of 7, then one every 60000/7 ms ≈ 8571.4 ms: 7 more by t = 60 000.
    expect(admitted).toBe(14);
  });

  it('prices a token cost against TPM and answers when it will fit', () => {
    const st = { s: undefined as GcraState | undefined };
    expect(burst(st, 1_000, 400, 0)).toBe(2);
    // 800 used, 400 more needs 200 drained: 200 tokens at 1000/min = 12 s.
    expect(gcraTake(st.s, 1_000, 400, 0)).toMatchObject({ allowed: false, retryAfterMs: 12_000 });
    expect(gcraTake(st.s, 1_000, 400, 12_000).allowed).toBe(true);
  });

  it('moves the TAT back on a settle that returns tokens, and forward on an overrun', () => {
    let s = gcraTake(undefined, 1_000, 900, 0).next;
    s = gcraAdjust(s, 1_000, -700, 0);
    expect(gcraUsage(s, 1_000, 0)).toMatchObject({ used: 200, remaining: 800 });
    s = gcraAdjust(s, 1_000, 1_300, 0);
    expect(gcraUsage(s, 1_000, 0)).toMatchObject({ used: 1_000, remaining: 0 });
    // 1500 outstanding: the next token fits after 501 drained = 30.06 s.
    expect(gcraTake(s, 1_000, 1, 0)).toMatchObject({ allowed: false, retryAfterMs: 30_060 });
    // Returning more than is outstanding cannot bank capacity.
    s = gcraAdjust(s, 1_000, -5_000, 0);
    expect(burst({ s }, 1_000, 1_000, 0)).toBe(1);
  });

  it('keeps the units already sent when the limit changes (config reload); only the drain rate follows', () => {
    const s = gcraTake(undefined, 10, 5, 0).next;
    expect(gcraUsage(s, 20, 0)).toMatchObject({ limit: 20, used: 5, remaining: 15 });
    // 5 units at 20/min drain in 15 s.
    expect(gcraUsage(s, 20, 0).resetsAtMs).toBe(15_000);
  });
});
