import { parseConfig } from '@switchyard/config';
import { ManualClock } from '@switchyard/util';
import { createLocalShare, shareKeys, shareOf, type ShareKey } from './local-share';

const WINDOW = 60_000;

function setup(routers = 2, reservationTtlMs = 30_000) {
  const clock = new ManualClock(1_000_000);
  let live = routers;
  const share = createLocalShare({ clock, windowMs: WINDOW, liveRouters: () => live, reservationTtlMs });
  return { clock, share, setRouters: (n: number) => (live = n) };
}

const dep = (limits: ShareKey['limits']): ShareKey => ({ kind: 'deployment', id: 'gpt', limits });
const enforce = { enforce: true };

/** Acquires until the first denial; returns how many were granted. */
function fill(share: ReturnType<typeof setup>['share'], keys: ShareKey[], tokens: number): number {
  let n = 0;
  while (share.acquire(keys, tokens, enforce).granted) n += 1;
  return n;
}

describe('local share (limit ÷ live routers on a sliding window)', () => {
  it('admits floor(limit ÷ routers) requests per window, then denies with the wait until the oldest leaves', () => {
    const { clock, share } = setup(2);
    const keys = [dep({ rpm: 25 })];
    expect(fill(share, keys, 0)).toBe(12);
    clock.advance(10_000);
    const denied = share.acquire(keys, 0, enforce);
    expect(denied).toEqual({ granted: false, blocked: { kind: 'deployment', id: 'gpt' }, dimension: 'rpm', share: 12, retryAfterMs: 50_000 });
    clock.advance(49_999);
    expect(share.acquire(keys, 0, enforce).granted).toBe(false);
    clock.advance(1);
    expect(fill(share, keys, 0)).toBe(12);
  });

  it('never holds more than the share in any window, whatever the spacing of the requests', () => {
    const { clock, share } = setup(3);
    const keys = [dep({ rpm: 30 })];
    const admittedAt: number[] = [];
    for (let t = 0; t < 5 * WINDOW; t += 700) {
      clock.set(1_000_000 + t);
      if (share.acquire(keys, 0, enforce).granted) admittedAt.push(t);
    }
    for (const start of admittedAt) expect(admittedAt.filter((t) => t >= start && t < start + WINDOW).length).toBeLessThanOrEqual(10);
    // and not by refusing everything: a full share per window once it slides
    expect(admittedAt.length).toBeGreaterThanOrEqual(10 * 5);
  });

  it('divides by the routers alive at the time of the call', () => {
    const { share, setRouters } = setup(4);
    const keys = [dep({ rpm: 20 })];
    expect(fill(share, keys, 0)).toBe(5);
    setRouters(2);
    expect(fill(share, keys, 0)).toBe(5);
  });

  it('counts TPM in tokens: an estimate that does not fit is denied, a settle to the actual tokens makes room', () => {
    const { share } = setup(1);
    const keys = [dep({ tpm: 1_000 })];
    const first = share.acquire(keys, 800, enforce);
    expect(first.granted).toBe(true);
    expect(share.acquire(keys, 300, enforce)).toMatchObject({ granted: false, dimension: 'tpm', share: 1_000 });
    expect(share.settle(first.granted ? first.reservationId : '', { tokens: 500 })).toBe(true);
    expect(share.acquire(keys, 300, enforce).granted).toBe(true);
    expect(share.acquire(keys, 300, enforce).granted).toBe(false);
  });

  it('a cancelled reservation gives back its request and its tokens', () => {
    const { share } = setup(1);
    const keys = [dep({ rpm: 2, tpm: 100 })];
    const a = share.acquire(keys, 100, enforce);
    expect(share.acquire(keys, 1, enforce).granted).toBe(false);
    share.settle(a.granted ? a.reservationId : '', 'cancelled');
    expect(fill(share, keys, 50)).toBe(2);
  });

  it('concurrency: slots of the share are held until settled, or until the reservation expires', () => {
    const { clock, share } = setup(2);
    const keys = [dep({ concurrency: 4 })];
    const a = share.acquire(keys, 0, enforce);
    const b = share.acquire(keys, 0, enforce);
    expect(share.acquire(keys, 0, enforce)).toMatchObject({ granted: false, dimension: 'concurrency', share: 2, retryAfterMs: 30_000 });
    share.settle(a.granted ? a.reservationId : '', { tokens: 0 });
    clock.advance(1_000);
    expect(share.acquire(keys, 0, enforce).granted).toBe(true);
    clock.advance(29_000);
    expect(share.settle(b.granted ? b.reservationId : '', { tokens: 0 })).toBe(false);
    expect(fill(share, keys, 0)).toBe(1);
  });

  it('all keys or none: a tenant over its share blocks the deployment admission, and the longest wait is reported', () => {
    const { clock, share } = setup(1);
    const tenant: ShareKey = { kind: 'tenant', id: 'acme', limits: { rpm: 1 } };
    const keys = [dep({ rpm: 100 }), tenant];
    expect(share.acquire(keys, 0, enforce).granted).toBe(true);
    clock.advance(1_000);
    expect(share.acquire(keys, 0, enforce)).toMatchObject({ granted: false, blocked: { kind: 'tenant', id: 'acme' }, retryAfterMs: 59_000 });
    // the denied call took nothing from the deployment
    expect(fill(share, [dep({ rpm: 100 })], 0)).toBe(99);
  });

  it('a share of 0 (limit below the router count) admits nothing', () => {
    const { share } = setup(3);
    expect(share.acquire([dep({ rpm: 2 })], 0, enforce)).toMatchObject({ granted: false, share: 0, retryAfterMs: WINDOW });
  });

  it('counts admissions the shared limiter made, so a switch to the share starts from this router’s real use', () => {
    const { clock, share } = setup(2);
    const keys = [dep({ rpm: 24 })];
    for (let i = 0; i < 20; i++) expect(share.acquire(keys, 0, { enforce: false }).granted).toBe(true);
    expect(share.acquire(keys, 0, enforce).granted).toBe(false);
    clock.advance(WINDOW);
    expect(fill(share, keys, 0)).toBe(12);
  });

  it('an overrun settled after its estimate left the window still counts, from now', () => {
    const { clock, share } = setup(1, 2 * WINDOW);
    const keys = [dep({ tpm: 1_000 })];
    const a = share.acquire(keys, 100, enforce);
    clock.advance(WINDOW);
    share.settle(a.granted ? a.reservationId : '', { tokens: 900 });
    expect(share.acquire(keys, 201, enforce)).toMatchObject({ granted: false, dimension: 'tpm' });
    expect(share.acquire(keys, 200, enforce).granted).toBe(true);
  });
});

describe('shareKeys (the limits the limiter service applies)', () => {
  const gateway = parseConfig(`
deployments:
  gpt:
    provider: openai
    baseUrl: http://127.0.0.1:1/v1
    model: m
    apiKey: env:K
    limits: { rpm: 30, tpm: 3000, concurrency: 5 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }
  free:
    provider: openai
    baseUrl: http://127.0.0.1:1/v1
    model: m
    apiKey: env:K
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }
routes:
  chat: { candidates: [{ deployment: gpt }] }
tenants:
  acme:
    apiKeys: [{ id: k, sha256: ${'a'.repeat(64)} }]
    limits: { rpm: 7 }
  open:
    apiKeys: [{ id: k2, sha256: ${'b'.repeat(64)} }]
defaults:
  headroom: 0.8
`);

  it('scales deployment limits by headroom and takes tenant limits as written', () => {
    expect(shareKeys(gateway, 'gpt', 'acme')).toEqual([
      { kind: 'deployment', id: 'gpt', limits: { rpm: 24, tpm: 2400, concurrency: 4 } },
      { kind: 'tenant', id: 'acme', limits: { rpm: 7 } },
    ]);
  });

  it('leaves out keys without limits', () => {
    expect(shareKeys(gateway, 'free', 'open')).toEqual([]);
  });

  it('shareOf floors each dimension', () => {
    expect(shareOf({ rpm: 24, tpm: 2400, concurrency: 4 }, 5)).toEqual({ rpm: 4, tpm: 480, concurrency: 0 });
  });
});
