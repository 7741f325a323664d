/** Helpers of the sliding-window proofs: offered load spread over time, and units per sliding window. */

export interface Admission {
  /** Admission instant from the limiter (granted_at_unix_ms: Redis TIME). */
  at: number;
  units: number;
}

/**
 * Max over windows of `windowMs` starting at an admission; min over windows
 * starting just after one, inside [from, to − windowMs] (the windows the offered
 * load covered whole).
 */
export function windowCounts(admissions: Admission[], from: number, to: number, windowMs: number) {
  const sorted = [...admissions].sort((a, b) => a.at - b.at);
  const sumIn = (start: number) => sorted.filter((a) => a.at >= start && a.at < start + windowMs).reduce((s, a) => s + a.units, 0);
  let max = 0;
  let min = Infinity;
  for (const a of sorted) {
    max = Math.max(max, sumIn(a.at));
    if (a.at + 1 >= from && a.at + 1 + windowMs <= to) min = Math.min(min, sumIn(a.at + 1));
  }
  if (from + windowMs <= to) min = Math.min(min, sumIn(from));
  return { max, min };
}

/** Offers `perWindow` calls per window, spread evenly over time and round-robin over the clients, for `windows` windows. */
export async function offer<C>(clients: C[], perWindow: number, windows: number, windowMs: number, call: (c: C) => Promise<void>) {
  const pending: Promise<void>[] = [];
  const started = Date.now();
  const total = Math.round(perWindow * windows);
  for (let i = 0; i < total; i++) {
    const due = started + (i * windowMs) / perWindow;
    const delay = due - Date.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    pending.push(call(clients[i % clients.length]!));
  }
  await Promise.all(pending);
  return { started, ended: started + windows * windowMs };
}
