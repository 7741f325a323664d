import { ManualClock } from '@switchyard/util';
import { parseConfig } from '@switchyard/config';
import { createQuotaLeases, leaseCaps, type LeaseDecision, type QuotaLeases } from './quota-leases';

const pair = { deployment: 'd', tenant: 't' };
const other = { deployment: 'e', tenant: 't' };

function setup(cap = { requests: 100, tokens: 100_000 }) {
  const clock = new ManualClock(1_000_000);
  const book = createQuotaLeases({ clock, useMs: 1_000, holdMs: 55_000, minDemand: 1, caps: (p) => (p.deployment === 'no-lease' ? undefined : cap) });
  return { clock, book };
}

function admitted(d: LeaseDecision): string {
  if (d.kind !== 'admitted') throw new Error(`expected a lease admission, got ${d.kind}`);
  return d.id;
}

/** Takes a lease for `pair` of the size the book asks for and grants it at the current instant. */
function grantNext(book: QuotaLeases, clock: ManualClock, p = pair, tokens = 100) {
  const d = book.admit(p, tokens);
  if (d.kind !== 'take') throw new Error(`expected a take, got ${d.kind}`);
  book.granted(p, `res-${p.deployment}-${clock.now()}`, d.size, clock.now());
  return d.size;
}

describe('quota leases (bookkeeping)', () => {
  it('asks for a lease of two calls first, admits from it without a hop, and waits while one is being asked for', () => {
    const { book } = setup();
    const first = book.admit(pair, 100);
    expect(first).toEqual({ kind: 'take', size: { requests: 2, tokens: 225 } });
    expect(book.admit(pair, 100)).toEqual({ kind: 'wait' });
    book.granted(pair, 'res-1', { requests: 2, tokens: 225 }, 1_000_000);
    expect(book.owns(admitted(book.admit(pair, 100)))).toBe(true);
  });

  it('settles a lease once, after its window, with the calls used, their actual tokens and the last use', () => {
    const { clock, book } = setup();
    book.admit(pair, 100);
    book.granted(pair, 'res-1', { requests: 4, tokens: 400 }, clock.now());
    clock.advance(100);
    const a = admitted(book.admit(pair, 100));
    clock.advance(200);
    const b = admitted(book.admit(pair, 100));
    expect(book.settle(a, { tokens: 30 })).toBe(true);
    expect(book.settle(b, { tokens: 40 })).toBe(true);
    expect(book.due()).toEqual([]);
    clock.advance(700);
    expect(book.due()).toEqual([{ reservationId: 'res-1', usedRequests: 2, actualTokens: 70, lastUseMs: 300 }]);
    expect(book.due()).toEqual([]);
  });

  it('admits nothing past the window or beyond the room, and waits for running calls before settling', () => {
    const { clock, book } = setup();
    book.admit(pair, 100);
    book.granted(pair, 'res-1', { requests: 2, tokens: 150 }, clock.now());
    const a = admitted(book.admit(pair, 100));
    // 50 tokens left: a call of 100 does not fit; a new lease is asked for instead.
    expect(book.admit(pair, 100).kind).toBe('take');
    clock.advance(1_000);
    expect(book.due()).toEqual([]);
    book.settle(a, { tokens: 90 });
    expect(book.due()).toEqual([{ reservationId: 'res-1', usedRequests: 1, actualTokens: 90, lastUseMs: 0 }]);
  });

  it('gives a cancelled call back to its lease: not used, its room free again', () => {
    const { clock, book } = setup();
    book.admit(pair, 100);
    book.granted(pair, 'res-1', { requests: 2, tokens: 200 }, clock.now());
    const a = admitted(book.admit(pair, 100));
    admitted(book.admit(pair, 100));
    book.settle(a, 'cancelled');
    const c = admitted(book.admit(pair, 100));
    book.settle(c, { tokens: 10 });
    clock.advance(1_000);
    expect(book.due()).toEqual([]); // the second call still runs
  });

  it('settles a lease held too long anyway, charging calls still running at their reservation', () => {
    const { clock, book } = setup();
    book.admit(pair, 100);
    book.granted(pair, 'res-1', { requests: 2, tokens: 200 }, clock.now());
    const a = admitted(book.admit(pair, 120));
    clock.advance(55_000);
    expect(book.due()).toEqual([{ reservationId: 'res-1', usedRequests: 1, actualTokens: 120, lastUseMs: 0 }]);
    // Its late settle changes nothing any more.
    expect(book.settle(a, { tokens: 5 })).toBe(true);
    expect(book.due()).toEqual([]);
  });

  it('doubles the next lease when one runs short early, and shrinks it to the use of a window', () => {
    const { clock, book } = setup();
    expect(grantNext(book, clock).requests).toBe(2);
    const ids = [admitted(book.admit(pair, 100))];
    // The second of two leaves less than a quarter: the next one (twice as big) is asked for ahead of need.
    const d = book.admit(pair, 100);
    expect(d).toMatchObject({ kind: 'admitted', prefetch: { requests: 4 } });
    ids.push(admitted(d));
    book.granted(pair, 'res-2', { requests: 4, tokens: 1_000 }, clock.now());
    ids.push(admitted(book.admit(pair, 100)));
    for (const id of ids) book.settle(id, { tokens: 1 });
    clock.advance(1_000);
    // Both windows over; the second lease used 1 of 4: the next is sized to that use.
    expect(book.due().map((l) => l.reservationId).sort()).toEqual(['res-2', 'res-d-1000000']);
    expect(book.admit(pair, 100)).toMatchObject({ kind: 'take', size: { requests: 2 } });
  });

  it('after a refusal takes the per-call path for a window, then asks for half as much', () => {
    const { clock, book } = setup();
    grantNext(book, clock);
    admitted(book.admit(pair, 100));
    const d = book.admit(pair, 100);
    expect(d).toMatchObject({ prefetch: { requests: 4 } });
    book.refused(pair);
    expect(book.admit(pair, 100)).toEqual({ kind: 'exact' });
    clock.advance(1_000);
    expect(book.admit(pair, 100)).toMatchObject({ kind: 'take', size: { requests: 2 } });
  });

  it('takes no lease for a pair without caps, nor one smaller than two calls or a call larger than the cap', () => {
    expect(setup().book.admit({ deployment: 'no-lease', tenant: 't' }, 1)).toEqual({ kind: 'exact' });
    expect(setup({ requests: 1, tokens: 1_000 }).book.admit(pair, 1)).toEqual({ kind: 'exact' });
    expect(setup({ requests: 10, tokens: 50 }).book.admit(pair, 100)).toEqual({ kind: 'exact' });
  });

  it('revoking a deployment stops its leases at once and settles them when their calls are over; other deployments keep theirs', () => {
    const { clock, book } = setup();
    grantNext(book, clock);
    grantNext(book, clock, other);
    const a = admitted(book.admit(pair, 100));
    book.revoke('d');
    expect(book.admit(pair, 100).kind).toBe('take');
    book.refused(pair);
    expect(book.due()).toEqual([]);
    book.settle(a, { tokens: 7 });
    expect(book.due()).toEqual([{ reservationId: 'res-d-1000000', usedRequests: 1, actualTokens: 7, lastUseMs: 0 }]);
    expect(book.admit(other, 100).kind).toBe('admitted');
  });

  it('drains every lease for a final settle', () => {
    const { clock, book } = setup();
    grantNext(book, clock);
    admitted(book.admit(pair, 100));
    expect(book.drain()).toEqual([{ reservationId: 'res-d-1000000', usedRequests: 1, actualTokens: 100, lastUseMs: 0 }]);
    expect(book.drain()).toEqual([]);
  });
});

describe('leaseCaps', () => {
  const dep = (limits: string) => `{ provider: openai, baseUrl: http://x/v1, model: m, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }, limits: ${limits} }`;
  const gateway = parseConfig(`
deployments:
  plain: ${dep('{ rpm: 1000, tpm: 100000 }')}
  conc: ${dep('{ rpm: 1000, concurrency: 4 }')}
  daily: ${dep('{ tpd: 1000000 }')}
  open: ${dep('{}')}
routes:
  r: { candidates: [{ deployment: plain }] }
tenants:
  t: { apiKeys: [{ id: k1, sha256: '${'0'.repeat(64)}' }], limits: { rpm: 400 } }
defaults:
  headroom: 0.8
`);
  const caps = leaseCaps(gateway);

  it('is an eighth of the tightest effective limit of the pair (deployment × headroom, tenant as written)', () => {
    expect(caps({ deployment: 'plain', tenant: 't' })).toEqual({ requests: 50, tokens: 10_000 });
    expect(caps({ deployment: 'open', tenant: 'nobody' })).toEqual({ requests: 200, tokens: 1_000_000 });
  });

  it('is no lease for a deployment with a concurrency or TPD limit', () => {
    expect(caps({ deployment: 'conc', tenant: 't' })).toBeUndefined();
    expect(caps({ deployment: 'daily', tenant: 't' })).toBeUndefined();
  });
});

describe('quota leases on a slow limiter', () => {
  it('takes the per-call path for ten windows after a lease answered later than half its window', () => {
    const clock = new ManualClock(1_000_000);
    const book = createQuotaLeases({ clock, useMs: 100, holdMs: 55_000, minDemand: 1, caps: () => ({ requests: 100, tokens: 100_000 }) });
    const d = book.admit(pair, 10);
    if (d.kind !== 'take') throw new Error('expected a take');
    const sentAt = clock.now();
    clock.advance(60);
    book.granted(pair, 'res-slow', d.size, sentAt);
    // What is left of its window still admits…
    expect(book.admit(pair, 10).kind).toBe('admitted');
    clock.advance(40);
    // …but no new lease is asked for before ten windows have passed.
    expect(book.admit(pair, 10)).toEqual({ kind: 'exact' });
    clock.advance(1_000);
    expect(book.admit(pair, 10).kind).toBe('take');
  });
});

describe('quota leases at a trickle', () => {
  it('asks for no lease before the pair has seen enough calls within a window; a quiet spell starts the count again', () => {
    const clock = new ManualClock(1_000_000);
    const book = createQuotaLeases({ clock, useMs: 1_000, holdMs: 55_000, minDemand: 3, caps: () => ({ requests: 100, tokens: 100_000 }) });
    expect(book.admit(pair, 10)).toEqual({ kind: 'exact' });
    clock.advance(600);
    expect(book.admit(pair, 10)).toEqual({ kind: 'exact' });
    clock.advance(600);
    // Two in the window before, one in this one: not yet three.
    expect(book.admit(pair, 10)).toEqual({ kind: 'exact' });
    expect(book.admit(pair, 10)).toEqual({ kind: 'exact' });
    expect(book.admit(pair, 10).kind).toBe('take');
    book.refused(pair);
    clock.advance(5_000);
    expect(book.admit(pair, 10)).toEqual({ kind: 'exact' });
  });
});
