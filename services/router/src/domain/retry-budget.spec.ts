import { ManualClock } from '@switchyard/util';
import { createRetryBudget } from './retry-budget';

function drain(budget: { tryWithdraw(): boolean }): number {
  let n = 0;
  while (budget.tryWithdraw()) n += 1;
  return n;
}

describe('retry budget (retries ≤ ratio × requests + minPerSecond)', () => {
  it('allows 20 % of requests plus the 10/s reserve, then refuses', () => {
    const clock = new ManualClock(1_000_000);
    const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 10 }, clock);
    for (let i = 0; i < 100; i++) budget.deposit();
    expect(drain(budget)).toBe(20 + 10);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('refills the reserve at minPerSecond, never beyond one second of it', () => {
    const clock = new ManualClock(1_000_000);
    const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 10 }, clock);
    expect(drain(budget)).toBe(10);
    clock.advance(500);
    expect(drain(budget)).toBe(5);
    clock.advance(60_000);
    expect(drain(budget)).toBe(10);
  });

  it('forgets deposits older than the window, so a healthy spell banks no burst', () => {
    const clock = new ManualClock(1_000_000);
    const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 0, windowMs: 10_000 }, clock);
    for (let i = 0; i < 1000; i++) budget.deposit();
    clock.advance(10_100);
    expect(budget.tryWithdraw()).toBe(false);
    for (let i = 0; i < 10; i++) budget.deposit();
    expect(drain(budget)).toBe(2);
  });

  it('under steady load keeps retries at the ratio (a storm cannot amplify)', () => {
    const clock = new ManualClock(1_000_000);
    const budget = createRetryBudget({ ratio: 0.2, minPerSecond: 10 }, clock);
    let requests = 0;
    let granted = 0;
    // 200 req/s for 60 s, every request wants 2 retries.
    for (let ms = 0; ms < 60_000; ms += 5) {
      clock.advance(5);
      budget.deposit();
      requests += 1;
      for (let r = 0; r < 2; r++) if (budget.tryWithdraw()) granted += 1;
    }
    expect(granted / requests).toBeLessThanOrEqual(0.2 + 10 / 200 + 0.01);
    expect(granted / requests).toBeGreaterThanOrEqual(0.2);
  });

  it('names the bad setting', () => {
    expect(() => createRetryBudget({ ratio: -1, minPerSecond: 1 }, new ManualClock(0))).toThrow(/ratio/);
    expect(() => createRetryBudget({ ratio: 0.2, minPerSecond: -1 }, new ManualClock(0))).toThrow(/minPerSecond/);
  });
});
