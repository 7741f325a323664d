import { periodWindow } from './period';

describe('periodWindow', () => {
  const at = Date.UTC(2026, 10, 21, 8, 30, 15);

  it('labels hour, day and month windows in UTC with exclusive ends', () => {
    expect(periodWindow('hour', at)).toEqual({ label: '2026-11-21T08', startMs: Date.UTC(2026, 10, 21, 8), endMs: Date.UTC(2026, 10, 21, 9) });
    expect(periodWindow('day', at)).toEqual({ label: '2026-11-21', startMs: Date.UTC(2026, 10, 21), endMs: Date.UTC(2026, 10, 22) });
    expect(periodWindow('month', at)).toEqual({ label: '2026-11', startMs: Date.UTC(2026, 10, 1), endMs: Date.UTC(2026, 11, 1) });
  });

  it('rolls the month over at the year end and handles leap February', () => {
    expect(periodWindow('month', Date.UTC(2026, 11, 31, 23, 59))).toMatchObject({ label: '2026-12', endMs: Date.UTC(2027, 0, 1) });
    expect(periodWindow('month', Date.UTC(2028, 1, 29, 12))).toMatchObject({ label: '2028-02', endMs: Date.UTC(2028, 2, 1) });
  });

  it('puts the exact boundary instant in the new window', () => {
    expect(periodWindow('day', Date.UTC(2026, 10, 22)).label).toBe('2026-11-22');
    expect(periodWindow('hour', Date.UTC(2026, 10, 21, 9) - 1).label).toBe('2026-11-21T08');
  });
});
