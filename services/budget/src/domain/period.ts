import type { BudgetPeriodName } from './caps';

/** One calendar-aligned accounting window in UTC. */
export interface PeriodWindow {
  /** Key suffix naming the window: `2026-11-21T08` (hour), `2026-11-21` (day), `2026-11` (month). */
  label: string;
  startMs: number;
  /** Exclusive end: the instant the next window starts (when the cap resets). */
  endMs: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * The window of `period` that contains `nowMs`. The Redis scripts compute the
 * same windows in Lua from Redis TIME (see redis-budget-store.ts); both are held
 * to the same labels by the store contract suite.
 */
export function periodWindow(period: BudgetPeriodName, nowMs: number): PeriodWindow {
  const d = new Date(nowMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const date = `${pad(y, 4)}-${pad(m + 1)}-${pad(d.getUTCDate())}`;
  switch (period) {
    case 'hour': {
      const startMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
      return { label: `${date}T${pad(d.getUTCHours())}`, startMs, endMs: startMs + HOUR_MS };
    }
    case 'day': {
      const startMs = Math.floor(nowMs / DAY_MS) * DAY_MS;
      return { label: date, startMs, endMs: startMs + DAY_MS };
    }
    case 'month':
      return { label: `${pad(y, 4)}-${pad(m + 1)}`, startMs: Date.UTC(y, m, 1), endMs: Date.UTC(y, m + 1, 1) };
  }
}
