import { parseConfig } from '@switchyard/config';
import { ManualClock } from '@switchyard/util';
import type { Admission } from '../domain/run-attempts';
import { createLimiterFallback, LOCAL_SHARE_NOTE, type SharedAcquire } from './limiter-fallback';

const WINDOW = 3_000;
const gateway = parseConfig(`
deployments:
  gpt:
    provider: openai
    baseUrl: http://127.0.0.1:1/v1
    model: m
    apiKey: env:K
    limits: { rpm: 10 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }
routes:
  chat: { candidates: [{ deployment: gpt }] }
tenants:
  acme:
    apiKeys: [{ id: k, sha256: ${'a'.repeat(64)} }]
  small:
    apiKeys: [{ id: k2, sha256: ${'b'.repeat(64)} }]
    limits: { rpm: 2 }
defaults:
  headroom: 0.8
`);

function setup() {
  const clock = new ManualClock(1_000_000);
  const logs: string[] = [];
  const logger = { info: (_: object, m?: string) => logs.push(`info ${m}`), warn: (_: object, m?: string) => logs.push(`warn ${m}`), error: () => undefined };
  // 10 rpm × 0.8 headroom = 8; ÷ 2 routers = 4 per router
  let remote: SharedAcquire = { kind: 'unreachable', error: 'UNAVAILABLE: connection refused' };
  let probes = 0;
  const probe = async () => {
    probes += 1;
    return remote.kind !== 'unreachable';
  };
  const fallback = createLimiterFallback({ gateway, clock, windowMs: WINDOW, retryMs: 200, probe, liveRouters: () => 2, logger });
  let asked = 0;
  let seq = 0;
  const shared = async (): Promise<SharedAcquire> => {
    asked += 1;
    if (remote.kind === 'answered' && remote.admission.granted) return { kind: 'answered', admission: { granted: true, reservationId: `remote-${++seq}` } };
    return remote;
  };
  const admit = (tenant = 'acme') => fallback.admit({ deployment: 'gpt', tenant, tokens: 10 }, shared);
  return {
    clock,
    logs,
    fallback,
    admit,
    asked: () => asked,
    probes: () => probes,
    limiterUp: () => (remote = { kind: 'answered', admission: { granted: true } }),
    limiterDown: () => (remote = { kind: 'unreachable', error: 'UNAVAILABLE: connection refused' }),
    limiterDenies: () => (remote = { kind: 'answered', admission: { granted: false, retryAfterMs: 500, reason: 'deployment gpt RPM exhausted' } }),
  };
}

/** Lets a probe's answer (a few promise hops) land. */
const probeAnswered = () => new Promise<void>((done) => setImmediate(done));

async function admitMany(admit: () => Promise<Admission>, n: number): Promise<Admission[]> {
  const out: Admission[] = [];
  for (let i = 0; i < n; i++) out.push(await admit());
  return out;
}

describe('limiter fallback (the share of a router while the limiter service cannot answer)', () => {
  it('passes the limiter’s answers through while it answers; their settles still go to the limiter', async () => {
    const t = setup();
    t.limiterUp();
    const a = await t.admit();
    expect(a).toEqual({ granted: true, reservationId: 'remote-1' });
    expect(t.fallback.settle('remote-1', { tokens: 10 })).toBe(false);
    t.limiterDenies();
    expect(await t.admit()).toMatchObject({ granted: false, reason: 'deployment gpt RPM exhausted' });
  });

  it('limiter unreachable: admits this router’s share (headroom × limit ÷ routers), marked, then denies with a retry-after — never unmetered', async () => {
    const t = setup();
    const results = await admitMany(t.admit, 6);
    expect(results.slice(0, 4).map((r) => r.granted && r.note)).toEqual([LOCAL_SHARE_NOTE, LOCAL_SHARE_NOTE, LOCAL_SHARE_NOTE, LOCAL_SHARE_NOTE]);
    for (const denied of results.slice(4)) {
      expect(denied).toMatchObject({ granted: false, final: false, reason: "deployment gpt RPM exhausted (this router's share, 4: limiter unavailable)" });
      expect(denied.granted === false && denied.retryAfterMs).toBe(WINDOW);
    }
  });

  it('a tenant over its share is final (no other candidate can help)', async () => {
    const t = setup();
    await t.admit('small');
    expect(await t.admit('small')).toMatchObject({ granted: false, final: true, reason: expect.stringMatching(/^tenant small RPM exhausted/) });
  });

  it('while the limiter is down no call pays its hop: a probe every retry interval, and its first answer brings everyone back', async () => {
    const t = setup();
    await admitMany(t.admit, 2);
    expect(t.asked()).toBe(1);
    expect(t.probes()).toBe(0);
    expect(t.logs).toEqual(['warn limiter unreachable: admitting from this router’s share (limit ÷ live routers) until it answers']);
    t.clock.advance(200);
    expect((await admitMany(t.admit, 2)).map((a) => a.granted && a.note)).toEqual([LOCAL_SHARE_NOTE, LOCAL_SHARE_NOTE]);
    expect([t.asked(), t.probes()]).toEqual([1, 1]);
    await probeAnswered();
    t.limiterUp();
    t.clock.advance(199);
    await t.admit();
    expect(t.probes()).toBe(1);
    t.clock.advance(1);
    await t.admit();
    expect(t.probes()).toBe(2);
    await probeAnswered();
    expect(t.fallback.mode()).toBe('shared');
    expect(t.logs.at(-1)).toBe('info limiter answers again: back to shared admission');
    expect(t.logs).toHaveLength(2);
    expect(await t.admit()).toMatchObject({ granted: false, reason: expect.stringMatching(/has not seen the admissions/) });
    expect(t.asked()).toBe(1);
  });

  it('comes back within a probe interval even while its share is spent (calls refused meanwhile, not admitted)', async () => {
    const t = setup();
    await admitMany(t.admit, 6);
    t.limiterUp();
    t.clock.advance(200);
    expect(await t.admit()).toMatchObject({ granted: false, reason: expect.stringMatching(/limiter unavailable\)$/) });
    await probeAnswered();
    expect(t.fallback.mode()).toBe('shared');
  });

  it('settles a local reservation locally: a cancelled one gives its place back', async () => {
    const t = setup();
    const granted = await admitMany(t.admit, 4);
    expect(await t.admit()).toMatchObject({ granted: false });
    const first = granted[0]!;
    expect(first.granted && t.fallback.settle(first.reservationId!, 'cancelled')).toBe(true);
    expect(await t.admit()).toMatchObject({ granted: true, note: LOCAL_SHARE_NOTE });
  });

  it('after the limiter returns, the share still applies on top of its grants until the local admissions left the window', async () => {
    const t = setup();
    const local = await admitMany(t.admit, 2);
    t.limiterUp();
    t.clock.advance(200);
    local.push(await t.admit());
    await probeAnswered();
    expect(t.fallback.mode()).toBe('shared');
    const during = await admitMany(t.admit, 2);
    // the limiter grants both, but this router's share of the window (4) already holds 3 admitted without it
    expect(during.map((a) => a.granted)).toEqual([true, false]);
    expect(t.fallback.mode()).toBe('shared');
    expect(during[1]).toMatchObject({ reason: expect.stringMatching(/has not seen the admissions made while it was unavailable/) });
    t.clock.advance(WINDOW - 200);
    // local admissions still in flight keep the hand-over going (the share holds the limiter grant and the local one of t=200)
    expect((await admitMany(t.admit, 3)).map((a) => a.granted)).toEqual([true, true, false]);
    for (const a of local) if (a.granted) t.fallback.settle(a.reservationId!, { tokens: 10 });
    // the last local admission (t=200) leaves the window at t=3200
    t.clock.advance(199);
    expect(await t.admit()).toMatchObject({ granted: false });
    t.clock.advance(1);
    const after = await admitMany(t.admit, 6);
    expect(after.every((a) => a.granted && !a.note)).toBe(true);
  });

  it('counts the limiter’s grants, so an outage right after them starts from this router’s real use of the window', async () => {
    const t = setup();
    t.limiterUp();
    await admitMany(t.admit, 3);
    t.limiterDown();
    const outage = await admitMany(t.admit, 3);
    expect(outage.map((a) => a.granted)).toEqual([true, false, false]);
  });
});
