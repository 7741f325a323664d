import { createLatencyEstimate, expectedLatency } from './latency-estimate';

describe('latency estimate', () => {
  it('starts at the first observation and moves by alpha toward each new one', () => {
    const e = createLatencyEstimate(0.5);
    expect(e.get('a')).toBe(0);
    e.observe('a', 100);
    expect(e.get('a')).toBe(100);
    e.observe('a', 300);
    expect(e.get('a')).toBe(200);
    e.observe('a', Number.NaN);
    expect(e.get('a')).toBe(200);
  });

  it('prefers the health replica p50 and falls back to the local EWMA', () => {
    expect(expectedLatency(120, 400)).toBe(120);
    expect(expectedLatency(0, 400)).toBe(400);
    expect(expectedLatency(undefined, 0)).toBe(0);
  });
});
