import { ManualClock } from '@switchyard/util';
import { CancelledError, ProviderError, CLASS_POLICY, type Classification, type ErrorClass } from '@switchyard/providers';
import type { Candidate } from './candidates';
import { ATTEMPT_CUT_BY_DEADLINE, runAttempts, type Admission, type AttemptEvent, type AttemptPorts } from './run-attempts';
import { candidate, fixedRng } from './test-fixtures';

function providerError(errorClass: ErrorClass, extra: Partial<Classification> = {}): ProviderError {
  return new ProviderError({ errorClass, ...CLASS_POLICY[errorClass], message: `${errorClass} happened`, ...extra });
}

/** Scripted upstream: each deployment answers from its own queue of outcomes ('ok' or an error). */
function harness(script: Record<string, (ErrorClass | 'ok' | Error)[]>, opts: { latencyMs?: number; admit?: (c: Candidate) => Admission } = {}) {
  const clock = new ManualClock(1_000_000);
  const calls: string[] = [];
  const sleeps: number[] = [];
  const events: AttemptEvent<string>[] = [];
  const ports: AttemptPorts<string> = {
    clock,
    rng: fixedRng(0.5),
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.advance(ms);
    },
    admit: async (c) => opts.admit?.(c) ?? { granted: true, reservationId: `res-${c.name}` },
    call: async (c) => {
      calls.push(c.name);
      clock.advance(opts.latencyMs ?? 10);
      const next = script[c.name]?.shift() ?? 'ok';
      if (next === 'ok') return `answer from ${c.name}`;
      if (next instanceof Error) throw next;
      throw providerError(next);
    },
    afterAttempt: (e) => events.push(e),
  };
  return { clock, calls, sleeps, events, ports };
}

const retry = { maxAttempts: 3, baseMs: 100, capMs: 1000 };
const options = (deadlineAt = Number.POSITIVE_INFINITY) => ({ retry, deadlineAt, fallbackOnContentFilter: false });

describe('runAttempts', () => {
  it('answers from the first candidate when it succeeds', async () => {
    const h = harness({});
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(result).toMatchObject({ ok: true, value: 'answer from a' });
    expect(result.attempts).toEqual([{ deployment: 'a', provider: 'openai', model: 'gpt-4o-mini', latencyMs: 10, attempt: 1 }]);
    expect(h.events).toHaveLength(1);
  });

  it('names the upstream request id of a successful attempt', async () => {
    const h = harness({});
    h.ports.upstreamRequestIdOf = (value) => `req_for_${value.split(' ').at(-1)}`;
    const result = await runAttempts([candidate('a')], h.ports, options());
    expect(result.attempts[0].upstreamRequestId).toBe('req_for_a');
  });

  it('does not retry a failed half-open probe on the same deployment: it falls back', async () => {
    const h = harness({ a: ['OVERLOADED', 'ok'] }, { admit: (c) => ({ granted: true, reservationId: `res-${c.name}`, ...(c.name === 'a' ? { probe: 'p-a' } : {}) }) });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(h.calls).toEqual(['a', 'b']);
    expect(result).toMatchObject({ ok: true, value: 'answer from b' });
    expect(result.attempts[0].note).toMatch(/half-open probe failed: not retried/);
  });

  it('fails a call whose only deployment failed its half-open probe, without a second request', async () => {
    const h = harness({ a: ['OVERLOADED', 'ok'] }, { admit: () => ({ granted: true, probe: 'p-a' }) });
    const result = await runAttempts([candidate('a')], h.ports, options());
    expect(h.calls).toEqual(['a']);
    expect(result).toMatchObject({ ok: false });
  });

  it('does not retry a deployment the breaker opened while the call was in flight', async () => {
    const h = harness({ a: ['OVERLOADED', 'ok'] });
    let aOpen = false;
    h.ports.mayDispatch = (c) => !(c.name === 'a' && aOpen);
    const call = h.ports.call;
    h.ports.call = async (c, t) => {
      try {
        return await call(c, t);
      } finally {
        if (c.name === 'a') aOpen = true;
      }
    };
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(h.calls).toEqual(['a', 'b']);
    expect(result.attempts[0].note).toMatch(/breaker opened: not retried/);
  });

  it('does not send to a deployment the breaker opened after it was planned, and hands the admission back', async () => {
    const h = harness({});
    const unused: string[] = [];
    h.ports.mayDispatch = (c) => c.name !== 'a';
    h.ports.unused = (a) => void unused.push(a.granted ? (a.reservationId ?? '') : '');
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(h.calls).toEqual(['b']);
    expect(unused).toEqual(['res-a']);
    expect(result).toMatchObject({ ok: true, value: 'answer from b' });
    expect(result.skipped[0]).toMatchObject({ name: 'a', reason: expect.stringMatching(/opened while the call was being admitted/) });
  });

  it('retries a 503 on the same deployment with jittered backoff, then succeeds', async () => {
    const h = harness({ a: ['OVERLOADED', 'OVERLOADED'] });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(result.ok).toBe(true);
    expect(h.calls).toEqual(['a', 'a', 'a']);
    expect(h.sleeps).toEqual([50, 100]);
    expect(result.attempts.map((a) => a.errorClass)).toEqual(['OVERLOADED', 'OVERLOADED', undefined]);
  });

  it('falls back after maxAttempts and lists every attempt', async () => {
    const h = harness({ a: ['OVERLOADED', 'SERVER_ERROR', 'OVERLOADED'] });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(result).toMatchObject({ ok: true, value: 'answer from b' });
    expect(result.attempts.map((a) => [a.deployment, a.errorClass ?? 'ok', a.attempt])).toEqual([
      ['a', 'OVERLOADED', 1],
      ['a', 'SERVER_ERROR', 2],
      ['a', 'OVERLOADED', 3],
      ['b', 'ok', 4],
    ]);
  });

  it('moves to the next candidate at once on RATE_LIMITED', async () => {
    const h = harness({ a: ['RATE_LIMITED'] });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(h.calls).toEqual(['a', 'b']);
    expect(h.sleeps).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('never sleeps past the deadline: a retry that does not fit becomes a failure', async () => {
    const h = harness({ a: ['OVERLOADED', 'OVERLOADED'] }, { latencyMs: 400 });
    const result = await runAttempts([candidate('a')], h.ports, { ...options(1_000_000 + 500), retry: { maxAttempts: 3, baseMs: 1000, capMs: 1000 } });
    expect(result.ok).toBe(false);
    expect(h.calls).toEqual(['a']);
  });

  it('bounds each attempt by the remaining deadline', async () => {
    const h = harness({});
    const timeouts: number[] = [];
    const call = h.ports.call;
    h.ports.call = (c, t) => (timeouts.push(t), call(c, t));
    await runAttempts([candidate('a', { timeoutMs: 30_000 })], h.ports, options(1_000_000 + 2000));
    // The deadline less the margin kept for answering before it.
    expect(timeouts).toEqual([2000 - 10]);
  });

  it('says when the caller\'s deadline cut the last attempt short; a timeout of the deployment\'s own (first token) falls back as before', async () => {
    const timingOut = (h: ReturnType<typeof harness>, lastsMs: (allowedMs: number) => number) => {
      h.ports.call = async (_c, allowedMs) => {
        h.clock.advance(lastsMs(allowedMs));
        throw providerError('TIMEOUT');
      };
    };
    const cut = harness({});
    timingOut(cut, (allowed) => allowed);
    const late = { ...options(cut.clock.now() + 300), answerDelayMs: () => 30 };
    expect(await runAttempts([candidate('a', { timeoutMs: 30_000 })], cut.ports, late)).toMatchObject({ ok: false, reason: ATTEMPT_CUT_BY_DEADLINE, deadlineExceeded: false });

    const firstToken = harness({});
    const tried: string[] = [];
    firstToken.ports.call = async (c, allowedMs) => {
      tried.push(c.name);
      if (c.name === 'b') return 'answer from b';
      firstToken.clock.advance(Math.min(100, allowedMs)); // its first-token timeout, well inside the deadline
      throw providerError('TIMEOUT');
    };
    const result = await runAttempts([candidate('a', { timeoutMs: 30_000 }), candidate('b')], firstToken.ports, options(firstToken.clock.now() + 2_000));
    expect(result).toMatchObject({ ok: true, value: 'answer from b' });
    expect(tried).toEqual(['a', 'a', 'a', 'b']); // retried up to maxAttempts, then the fallback, as before
  });

  it('marks a deadline-cut attempt as no breaker outcome only while it ran under 3x the usual latency', async () => {
    const cutAfter = async (usualMs: number, deadlineInMs: number, deploymentTimeoutMs = 30_000) => {
      const h = harness({});
      h.ports.expectedLatencyMs = () => usualMs;
      h.ports.call = async (_c, allowedMs) => {
        h.clock.advance(allowedMs);
        throw providerError('TIMEOUT');
      };
      await runAttempts([candidate('a', { timeoutMs: deploymentTimeoutMs })], h.ports, options(h.clock.now() + deadlineInMs));
      return h.events.map((e) => [e.record.latencyMs, e.cutByDeadline ?? false, e.record.note ?? '']);
    };
    expect(await cutAfter(100, 260)).toEqual([[250, true, expect.stringMatching(/cut by the caller's deadline within 3x the deployment's usual 100 ms: not a breaker failure/)]]);
    // Three times its usual latency and more: the deployment is slow by its own measure.
    expect((await cutAfter(100, 310))[0]!.slice(0, 2)).toEqual([300, false]);
    // No usual latency known yet: counted, as a hang would be.
    expect((await cutAfter(0, 260))[0]!.slice(0, 2)).toEqual([250, false]);
    // The deployment's own timeout, not the deadline's: counted.
    expect((await cutAfter(100, 10_000, 200))[0]!.slice(0, 2)).toEqual([200, false]);
  });

  it('a hung deployment leaves the next candidate time to answer: it is cut early, counted, and not retried', async () => {
    const run = async (usual: Record<string, number>) => {
      const h = harness({});
      h.ports.expectedLatencyMs = (c) => usual[c.name] ?? 0;
      const allowed: number[] = [];
      h.ports.call = async (c, allowedMs) => {
        allowed.push(allowedMs);
        if (c.name === 'b') {
          h.clock.advance(20);
          return 'answer from b';
        }
        h.clock.advance(allowedMs); // hangs until cut
        throw providerError('TIMEOUT');
      };
      const result = await runAttempts([candidate('a', { timeoutMs: 30_000 }), candidate('b')], h.ports, options(h.clock.now() + 1000));
      return { result, allowed, events: h.events };
    };
    const kept = await run({ a: 100, b: 20 });
    // 1000 ms less the 10 ms answer margin, less 3 x 20 + 100 ms kept for b.
    expect(kept.allowed).toEqual([830, 160]);
    expect(kept.result).toMatchObject({ ok: true, value: 'answer from b' });
    expect(kept.result.attempts[0]!.note).toMatch(/cut at 830 ms, keeping 160 ms for b/);
    expect(kept.events[0]!.cutByDeadline).toBeUndefined();

    // a's usual latency unknown: nothing to judge a hang by, so nothing is kept, and b is left no time.
    const unknown = await run({ b: 20 });
    expect(unknown.allowed).toEqual([990]);
    expect(unknown.result).toMatchObject({ ok: false });
    // Too little time for both: a gets it all.
    expect((await run({ a: 300, b: 20 })).allowed[0]).toBe(990);
  });

  it('fails fast on INVALID_REQUEST without trying other candidates', async () => {
    const h = harness({ a: ['INVALID_REQUEST'] });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(result).toMatchObject({ ok: false, last: { classification: { errorClass: 'INVALID_REQUEST' } } });
    expect(h.calls).toEqual(['a']);
  });

  it('on CONTEXT_LENGTH tries only candidates with a larger window', async () => {
    const h = harness({ a: ['CONTEXT_LENGTH'] });
    const result = await runAttempts(
      [candidate('a', { contextWindow: 8000 }), candidate('b', { contextWindow: 8000 }), candidate('c', { contextWindow: 200_000 })],
      h.ports,
      options(),
    );
    expect(h.calls).toEqual(['a', 'c']);
    expect(result.ok).toBe(true);
    expect(result.skipped.map((s) => s.name)).toEqual(['b']);
  });

  it('on CONTEXT_LENGTH with contextFallback off (route contextOverflow fail) stops: no larger window is tried', async () => {
    const h = harness({ a: ['CONTEXT_LENGTH'] });
    const result = await runAttempts([candidate('a', { contextWindow: 8000 }), candidate('c', { contextWindow: 200_000 })], h.ports, { ...options(), contextFallback: false });
    expect(h.calls).toEqual(['a']);
    expect(result.ok).toBe(false);
  });

  it('does not fall back on CONTENT_FILTER unless the route says so', async () => {
    const h1 = harness({ a: ['CONTENT_FILTER'] });
    expect((await runAttempts([candidate('a'), candidate('b')], h1.ports, options())).ok).toBe(false);
    const h2 = harness({ a: ['CONTENT_FILTER'] });
    expect((await runAttempts([candidate('a'), candidate('b')], h2.ports, { ...options(), fallbackOnContentFilter: true })).ok).toBe(true);
  });

  it('skips a candidate the limiter refuses, without an upstream attempt', async () => {
    const h = harness({}, { admit: (c) => (c.name === 'a' ? { granted: false, retryAfterMs: 700, reason: 'RPM exhausted' } : { granted: true }) });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(h.calls).toEqual(['b']);
    expect(result.skipped).toEqual([{ name: 'a', reason: 'limiter: RPM exhausted', retryAt: 1_000_700, quota: true }]);
  });

  it('uses the pre-acquired admission for the first attempt only', async () => {
    const admitted: string[] = [];
    const h = harness({ a: ['OVERLOADED'] }, { admit: (c) => (admitted.push(c.name), { granted: true }) });
    await runAttempts([candidate('a')], h.ports, { ...options(), firstAdmission: { granted: true, reservationId: 'pre' } });
    expect(admitted).toEqual(['a']); // the retry acquired anew
    expect(h.events[0]!.admission.reservationId).toBe('pre');
  });

  it('stops without classifying when the caller cancels', async () => {
    const h = harness({ a: [new CancelledError('gone')] });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(result).toMatchObject({ ok: false, cancelled: true });
    expect(h.events[0]!.cancelled).toBe(true);
    expect(h.calls).toEqual(['a']);
  });

  it('never fails over once output was committed (stream)', async () => {
    const h = harness({ a: ['OVERLOADED'] });
    h.ports.committed = () => true;
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(result.ok).toBe(false);
    expect(h.calls).toEqual(['a']);
  });

  it('records upstream request id, status and Retry-After of a failure', async () => {
    const h = harness({ a: [providerError('RATE_LIMITED', { upstreamRequestId: 'req_1', status: 429, retryAfterMs: 1200 })] });
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, options());
    expect(result.attempts[0]).toMatchObject({ upstreamRequestId: 'req_1', httpStatus: 429, retryAfterMs: 1200, errorClass: 'RATE_LIMITED' });
  });
});

describe('runAttempts, unused first admission', () => {
  it('hands the pre-acquired admission back when the deadline passed before the first attempt', async () => {
    const h = harness({});
    const returned: Admission[] = [];
    h.ports.unused = (a) => returned.push(a);
    const result = await runAttempts([candidate('a')], h.ports, { ...options(1_000_000), firstAdmission: { granted: true, reservationId: 'pre' } });
    expect(result).toMatchObject({ ok: false, deadlineExceeded: true });
    expect(returned).toEqual([{ granted: true, reservationId: 'pre' }]);
    expect(h.calls).toEqual([]);
  });
});

describe('runAttempts: retry budget, Retry-After and observed latency', () => {
  it('waits out Retry-After to within 50 ms and never sooner (injected sleep), then succeeds', async () => {
    for (const r of [0, 0.5, 0.999]) {
      const h = harness({ a: [providerError('RATE_LIMITED', { retryAfterMs: 300 }), 'ok'] });
      h.ports.rng = fixedRng(r);
      const result = await runAttempts([candidate('a')], h.ports, options());
      expect(result.ok).toBe(true);
      expect(h.sleeps).toHaveLength(1);
      expect(h.sleeps[0]).toBeGreaterThanOrEqual(300);
      expect(h.sleeps[0]).toBeLessThanOrEqual(350);
    }
  });

  it('fails fast once the retry budget is spent: no retry, no transient fallback', async () => {
    const h = harness({ a: ['OVERLOADED', 'OVERLOADED'], b: [] });
    const budget = { deposit: jest.fn(), tryWithdraw: jest.fn(() => false), available: () => 0 };
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, { ...options(), retryBudget: budget });
    expect(result).toMatchObject({ ok: false, reason: 'retry budget exhausted: failing fast' });
    expect(h.calls).toEqual(['a']);
    expect(budget.deposit).toHaveBeenCalledTimes(1);
  });

  it('with the budget spent, still falls back to a deployment not known to be failing (and only that way)', async () => {
    const spent = () => ({ deposit: () => undefined, tryWithdraw: jest.fn(() => false), available: () => 0 });
    const healthyB = harness({ a: ['OVERLOADED'] });
    healthyB.ports.knownHealthy = (c) => c.name === 'b';
    const ok = await runAttempts([candidate('a'), candidate('b')], healthyB.ports, { ...options(), retryBudget: spent() });
    expect(ok).toMatchObject({ ok: true, value: 'answer from b' });
    expect(healthyB.calls).toEqual(['a', 'b']);
    expect(ok.attempts[0]!.note).toMatch(/retry budget spent: falling back/);

    const sickB = harness({ a: ['OVERLOADED'] });
    sickB.ports.knownHealthy = () => false;
    const failed = await runAttempts([candidate('a'), candidate('b')], sickB.ports, { ...options(), retryBudget: spent() });
    expect(failed).toMatchObject({ ok: false, reason: 'retry budget exhausted: failing fast' });
    expect(sickB.calls).toEqual(['a']);
  });

  it('a fallback to a deployment not known to be failing does not draw on the budget', async () => {
    const h = harness({ a: ['OVERLOADED', 'OVERLOADED', 'OVERLOADED'] });
    h.ports.knownHealthy = (c) => c.name === 'b';
    let withdrawn = 0;
    const budget = { deposit: () => undefined, tryWithdraw: () => (withdrawn += 1) > 0, available: () => 1 };
    await runAttempts([candidate('a'), candidate('b')], h.ports, { ...options(), retryBudget: budget });
    expect(h.calls).toEqual(['a', 'a', 'a', 'b']);
    expect(withdrawn).toBe(2); // the two retries on a; the move to b was free
  });

  it('still falls back on a non-transient failure when the budget is spent (the next deployment is not the sick one)', async () => {
    const h = harness({ a: ['QUOTA_EXHAUSTED'] });
    const budget = { deposit: () => undefined, tryWithdraw: jest.fn(() => false), available: () => 0 };
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, { ...options(), retryBudget: budget });
    expect(result).toMatchObject({ ok: true, value: 'answer from b' });
    expect(budget.tryWithdraw).not.toHaveBeenCalled();
  });

  it('withdraws one retry per extra attempt after a transient failure', async () => {
    const h = harness({ a: ['OVERLOADED', 'SERVER_ERROR', 'TIMEOUT'], b: [] });
    let withdrawn = 0;
    const budget = { deposit: () => undefined, tryWithdraw: () => (withdrawn += 1) > 0, available: () => 1 };
    const result = await runAttempts([candidate('a'), candidate('b')], h.ports, { ...options(), retryBudget: budget });
    expect(result.ok).toBe(true);
    expect(h.calls).toEqual(['a', 'a', 'a', 'b']);
    expect(withdrawn).toBe(3);
  });

  it('does not start an attempt whose observed latency exceeds the time left; a faster candidate still goes', async () => {
    const h = harness({});
    const unused: Admission[] = [];
    h.ports.unused = (a) => unused.push(a);
    h.ports.expectedLatencyMs = (c) => (c.name === 'slow' ? 800 : 50);
    const deadlineAt = h.clock.now() + 500;
    const result = await runAttempts([candidate('slow'), candidate('fast')], h.ports, { ...options(deadlineAt), firstAdmission: { granted: true, reservationId: 'pre' } });
    expect(result).toMatchObject({ ok: true, value: 'answer from fast' });
    expect(h.calls).toEqual(['fast']);
    expect(result.ok && result.skipped[0]).toMatchObject({ name: 'slow', reason: expect.stringMatching(/observed latency 800 ms exceeds the 490 ms left/) });
    expect(unused).toEqual([{ granted: true, reservationId: 'pre' }]);
  });

  it('a call already refused quota whose attempt would not fit either is a quota failure with the limiter\'s retry-after, not a deadline one', async () => {
    const h = harness({});
    h.ports.expectedLatencyMs = () => 800;
    const result = await runAttempts([candidate('a')], h.ports, {
      ...options(h.clock.now() + 500),
      maxAdmissionWaitMs: 30_000,
      firstAdmission: { granted: false, retryAfterMs: 9, reason: 'deployment a TPM exhausted' },
    });
    expect(result).toMatchObject({ ok: false, deadlineExceeded: false });
    expect(result.skipped).toEqual([{ name: 'a', reason: 'limiter: deployment a TPM exhausted', retryAt: h.clock.now() + 9, quota: true }]);
    expect(h.calls).toEqual([]);
  });

  it('gives up with deadlineExceeded when no candidate can finish in time', async () => {
    const h = harness({});
    h.ports.expectedLatencyMs = () => 800;
    const result = await runAttempts([candidate('a')], h.ports, options(h.clock.now() + 500));
    expect(result).toMatchObject({ ok: false, deadlineExceeded: true, reason: 'no candidate can answer before the deadline' });
    expect(h.calls).toEqual([]);
  });
});

describe('runAttempts: limiter waits on the last candidate', () => {
  /** Admission port that records each ask's max wait and answers from a script. */
  function waitingHarness(answer: (c: Candidate, maxWaitMs: number | undefined) => Admission, latencyMs?: number) {
    const asks: { name: string; maxWaitMs: number | undefined }[] = [];
    const h = harness({}, latencyMs !== undefined ? { latencyMs } : {});
    h.ports.admit = async (c, maxWaitMs) => {
      asks.push({ name: c.name, maxWaitMs });
      return answer(c, maxWaitMs);
    };
    return { ...h, asks };
  }

  it('asks the limiter to queue the call on the last candidate, for what is left of the deadline', async () => {
    const h = waitingHarness((_c, w) => (w ? { granted: true, reservationId: 'queued' } : { granted: false, retryAfterMs: 20, reason: 'RPM exhausted' }));
    const result = await runAttempts([candidate('a')], h.ports, { ...options(h.clock.now() + 1000), maxAdmissionWaitMs: 30_000 });
    expect(result.ok).toBe(true);
    // No latency observed yet: half of the 990 ms left (deadline minus the answer margin).
    expect(h.asks).toEqual([{ name: 'a', maxWaitMs: undefined }, { name: 'a', maxWaitMs: 495 }]);
    expect(h.events[0]!.admission.reservationId).toBe('queued');
    expect(h.sleeps).toEqual([]); // the wait happened in the limiter, not in a router timer
  });

  it('leaves room for two attempts of observed latency and never asks beyond the configured cap', async () => {
    const h = waitingHarness((_c, w) => (w ? { granted: true } : { granted: false, retryAfterMs: 20, reason: 'RPM exhausted' }));
    h.ports.expectedLatencyMs = () => 300;
    await runAttempts([candidate('a')], h.ports, { ...options(h.clock.now() + 1000), maxAdmissionWaitMs: 30_000 });
    expect(h.asks[1]!.maxWaitMs).toBe(290); // 990 left - 2 × 300 expected - 100 for the trips back
    const capped = waitingHarness((_c, w) => (w ? { granted: true } : { granted: false, retryAfterMs: 20, reason: 'RPM exhausted' }));
    await runAttempts([candidate('a')], capped.ports, { ...options(), maxAdmissionWaitMs: 2_000 });
    expect(capped.asks[1]!.maxWaitMs).toBe(2_000);
    const noDeadline = waitingHarness((_c, w) => (w ? { granted: true } : { granted: false, retryAfterMs: 20, reason: 'RPM exhausted' }));
    noDeadline.ports.expectedLatencyMs = () => 300;
    await runAttempts([candidate('a')], noDeadline.ports, { ...options(), maxAdmissionWaitMs: 2_000 });
    expect(noDeadline.asks[1]!.maxWaitMs).toBe(2_000);
    const longDeadline = waitingHarness((_c, w) => (w ? { granted: true } : { granted: false, retryAfterMs: 20, reason: 'RPM exhausted' }));
    longDeadline.ports.expectedLatencyMs = () => 300;
    await runAttempts([candidate('a')], longDeadline.ports, { ...options(longDeadline.clock.now() + 10_010), maxAdmissionWaitMs: 30_000 });
    expect(longDeadline.asks[1]!.maxWaitMs).toBe(8_400); // 10 000 left - 600 - a tenth of it
  });

  it('hands back a grant that came too late for an attempt, and reports a quota failure (not a deadline one)', async () => {
    const h = waitingHarness((_c, w) => {
      if (!w) return { granted: false, retryAfterMs: 20, reason: 'RPM exhausted' };
      h.clock.advance(w + 250); // granted at the very end of the wait, later than asked (a stalled hop)
      return { granted: true, reservationId: 'late' };
    });
    h.ports.expectedLatencyMs = () => 100;
    const unused: string[] = [];
    h.ports.unused = (a) => void (a.granted && unused.push(a.reservationId!));
    const result = await runAttempts([candidate('a')], h.ports, { ...options(h.clock.now() + 1000), maxAdmissionWaitMs: 30_000 });
    expect(result).toMatchObject({ ok: false, deadlineExceeded: false, reason: 'no quota in time for the deadline' });
    expect(h.calls).toEqual([]);
    expect(unused).toEqual(['late']);
    expect(result.skipped).toEqual([{ name: 'a', reason: expect.stringMatching(/too late/), retryAt: h.clock.now(), quota: true }]);
  });

  it('keeps a late event loop\'s recent delay back from the queued wait and the attempt, so the answer leaves that much before the deadline', async () => {
    // The loop ran 300 ms late lately: an answer decided now may sit unsent that long.
    const lagging = { answerDelayMs: () => 300, maxAdmissionWaitMs: 30_000 };
    const h = waitingHarness((_c, w) => {
      if (!w) return { granted: false, retryAfterMs: 20, reason: 'TPM exhausted' };
      h.clock.advance(w); // the queue's turn comes at the very end of the wait
      return { granted: true, reservationId: 'queued' };
    });
    h.ports.expectedLatencyMs = () => 20;
    const timeouts: { at: number; timeoutMs: number }[] = [];
    const answer = h.ports.call;
    h.ports.call = (c, timeoutMs) => {
      timeouts.push({ at: h.clock.now(), timeoutMs });
      return answer(c, timeoutMs);
    };
    const deadlineAt = h.clock.now() + 2_000;
    const result = await runAttempts([candidate('a')], h.ports, { ...options(deadlineAt), ...lagging });
    expect(result.ok).toBe(true);
    // 2 000 - 10 answer margin - 300 delay = 1 690 left; less room for two attempts of 20 ms observed
    // (each 300 ms longer: the late loop reads their answers too) and a tenth for the trips back.
    expect(h.asks[1]!.maxWaitMs).toBe(881);
    // The attempt, however slow, is cut in time for its failure to reach the caller.
    const attempt = timeouts[0]!;
    expect(deadlineAt - (attempt.at + attempt.timeoutMs)).toBeGreaterThanOrEqual(300 + 10);
  });

  it('hands back a queued grant that leaves no room for the loop\'s recent delay: RESOURCE_EXHAUSTED in time, not an attempt the caller will not see', async () => {
    const h = waitingHarness((_c, w) => {
      if (!w) return { granted: false, retryAfterMs: 20, reason: 'TPM exhausted' };
      h.clock.advance(1_500); // the grant came back 1.5 s into a 2 s deadline: 490 ms left by the router's count
      return { granted: true, reservationId: 'late' };
    });
    h.ports.expectedLatencyMs = () => 20;
    const result = await runAttempts([candidate('a')], h.ports, { ...options(h.clock.now() + 2_000), maxAdmissionWaitMs: 30_000, answerDelayMs: () => 250 });
    expect(result).toMatchObject({ ok: false, deadlineExceeded: false, reason: 'no quota in time for the deadline' });
    expect(h.calls).toEqual([]);
  });

  it('waits once: a second denial skips the candidate with the limiter\'s retry-after', async () => {
    const h = waitingHarness(() => ({ granted: false, retryAfterMs: 40, reason: 'RPM exhausted' }));
    const result = await runAttempts([candidate('a')], h.ports, { ...options(h.clock.now() + 1000), maxAdmissionWaitMs: 30_000 });
    expect(result.ok).toBe(false);
    expect(h.asks).toHaveLength(2);
    expect(h.calls).toEqual([]);
    expect(result.skipped).toEqual([{ name: 'a', reason: 'limiter: RPM exhausted', retryAt: h.clock.now() + 40, quota: true }]);
  });

  it('waits for a concurrency slot whatever the limiter\'s retry-after says: it only bounds when the oldest slot expires', async () => {
    const h = waitingHarness((_c, w) => (w ? { granted: true } : { granted: false, retryAfterMs: 60_000, reason: 'deployment a concurrency exhausted', mayFreeSooner: true }));
    const result = await runAttempts([candidate('a')], h.ports, { ...options(h.clock.now() + 1000), maxAdmissionWaitMs: 30_000 });
    expect(result).toMatchObject({ ok: true, value: 'answer from a' });
    expect(h.asks).toHaveLength(2);
    expect(h.asks[1]!.maxWaitMs).toBeGreaterThan(0);
  });

  it('does not wait when another candidate can go now, when the wait does not fit, when waiting is off, or for the tenant\'s own limit', async () => {
    const blockedA = waitingHarness((c) => (c.name === 'a' ? { granted: false, retryAfterMs: 20, reason: 'cooldown' } : { granted: true }));
    const result = await runAttempts([candidate('a'), candidate('b')], blockedA.ports, { ...options(blockedA.clock.now() + 1000), maxAdmissionWaitMs: 30_000 });
    expect(result).toMatchObject({ ok: true, value: 'answer from b' });
    expect(blockedA.asks.map((a) => a.maxWaitMs)).toEqual([undefined, undefined]);

    const tooLong = waitingHarness(() => ({ granted: false, retryAfterMs: 600, reason: 'cooldown' }));
    expect((await runAttempts([candidate('a')], tooLong.ports, { ...options(tooLong.clock.now() + 1000), maxAdmissionWaitMs: 30_000 })).ok).toBe(false);
    expect(tooLong.asks).toHaveLength(1);

    const off = waitingHarness(() => ({ granted: false, retryAfterMs: 20, reason: 'cooldown' }));
    expect((await runAttempts([candidate('a')], off.ports, options(off.clock.now() + 1000))).ok).toBe(false);
    expect(off.asks).toHaveLength(1);

    const tenant = waitingHarness(() => ({ granted: false, retryAfterMs: 20, reason: 'tenant t RPM exhausted', final: true }));
    expect((await runAttempts([candidate('a')], tenant.ports, { ...options(tenant.clock.now() + 1000), maxAdmissionWaitMs: 30_000 })).ok).toBe(false);
    expect(tenant.asks).toHaveLength(1);
  });
});
