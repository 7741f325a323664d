import { monitorEventLoopDelay } from 'node:perf_hooks';
import { hashApiKey } from '@switchyard/config';
import { BreakerService, CacheStatus, CircuitState, ErrorClass, FinishReason, Role, type Final } from '@switchyard/contracts';
import { createClient, parseGrpcError, status } from '@switchyard/grpc';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';
import { sleep } from '@switchyard/util';
import { operatorMetadata, startStack, type Stack } from './stack';

/**
 * Issue 6 behaviour against the real stack (peers, Redis, NATS) and the
 * simulator spoken to by the official SDKs: Retry-After honoured, deadlines
 * bound every call, stream timeouts fire on time.
 */

const KEY = 'resilience-key';
const auth = { metadata: { 'x-api-key': KEY } };

function gatewayYaml(sim: string): string {
  const dep = (model: string, extra = '') => simDeploymentYaml(sim, model, { price: CHEAP_PRICE, extra });
  return `
deployments:
  ra: ${dep('ra-model')}
  fast: ${dep('fast-model')}
  slow: ${dep('slow-model')}
  down: ${dep('down-model')}
  hangs: ${dep('hang-model', '\n    timeoutMs: 5000')}
  limited: ${dep('limited-model')}
  st-first: ${dep('st-first-model', '\n    firstTokenTimeoutMs: 300')}
  st-idle: ${dep('st-idle-model', '\n    idleTimeoutMs: 300')}
  hp: ${dep('hp-model')}
  idem: ${dep('idem-model')}
  co: ${dep('co-model')}
routes:
  chat-co: { candidates: [{ deployment: co }] }
  chat-idem: { cacheable: false, candidates: [{ deployment: idem }] }
  chat-hp: { cacheable: false, candidates: [{ deployment: hp }, { deployment: fast, priority: 1 }] }
  chat-ra: { cacheable: false, candidates: [{ deployment: ra }] }
  chat-slow-then-fast: { cacheable: false, candidates: [{ deployment: slow }, { deployment: fast, priority: 1 }] }
  chat-slow: { cacheable: false, candidates: [{ deployment: slow }] }
  chat-down: { cacheable: false, candidates: [{ deployment: down }] }
  chat-down-then-slow: { cacheable: false, candidates: [{ deployment: down }, { deployment: slow, priority: 1 }] }
  chat-hangs: { cacheable: false, candidates: [{ deployment: hangs }] }
  chat-limited: { cacheable: false, candidates: [{ deployment: limited }] }
  chat-st-first: { cacheable: false, candidates: [{ deployment: st-first }, { deployment: fast, priority: 1 }] }
  chat-st-idle: { cacheable: false, candidates: [{ deployment: st-idle }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 3, baseMs: 20, capMs: 100 }
  breaker: { consecutiveFailures: 1000 }
`;
}

const baseScenario = {
  seed: 11,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: {
    'ra-model': { retryAfterMs: 400 },
    'fast-model': {},
    'slow-model': { latency: { firstToken: 600 } },
    'down-model': { faults: { unavailable: 1 }, retryAfterMs: 50 },
    'hang-model': { faults: { hang: 1 } },
    'limited-model': { faults: { rate_limit: 1 }, retryAfterMs: 2000 },
    'st-first-model': { latency: { firstToken: 1500 } },
    'hp-model': { latency: { firstToken: 400 } },
    'idem-model': { latency: { firstToken: 300 } },
    'co-model': { latency: { firstToken: 300 } },
    'st-idle-model': { latency: { firstToken: 0, perToken: 1500 }, reply: { minTokens: 10, maxTokens: 12 } },
  },
};

const ask = (route: string, content = `${route} ${Math.random()}`) => ({ route, messages: [{ role: Role.USER, content }], params: { maxTokens: 32 } });

type StreamRequest = ReturnType<typeof ask> & { idempotencyKey?: string };

/** One StreamComplete read to its end: the deltas, and the finals (a well-formed stream has exactly one, last). */
async function readStream(stack: Stack, req: StreamRequest) {
  const deltas: string[] = [];
  const finals: Final[] = [];
  for await (const msg of stack.client.streamComplete(req, auth)) {
    if (msg.event.case === 'delta') deltas.push(msg.event.value.text);
    else if (msg.event.case === 'final') finals.push(msg.event.value);
  }
  return { deltas, text: deltas.join(''), finals, final: finals[0] };
}

describe('router resilience (retry-after, deadlines, stream timeouts) against the real stack', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, baseScenario);
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('honours the simulator retry-after-ms to within 50 ms, never sooner, then succeeds on the same deployment', async () => {
    // A replica whose waits are recorded (the real sleep, observed).
    const waits: number[] = [];
    const { client } = await stack.startRouter({}, { sleep: (ms, signal) => (waits.push(ms), sleep(ms, signal)) });
    await stack.sim.reset();
    await stack.sim.setScenario({
      ...baseScenario,
      deployments: { ...baseScenario.deployments, 'ra-model': { retryAfterMs: 1500, outages: [{ from: 0, to: 1400, kind: 'rate_limit' }] } },
    });
    // Stalls of this shared process (router, peers and test in one loop) delay the retry's send too: measured and excluded.
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const res = await client.complete(ask('chat-ra'), auth);
    lag.disable();
    const stallMs = lag.max / 1e6;
    expect(res.attempts.map((a) => a.errorClass)).toEqual([ErrorClass.RATE_LIMITED, ErrorClass.UNSPECIFIED]);
    expect(res.attempts[0]!.retryAfterMs).toBe(1500);
    // The router's own wait: Retry-After plus at most 25 ms of jitter.
    expect(waits[0]).toBeGreaterThanOrEqual(1500);
    expect(waits[0]).toBeLessThanOrEqual(1525);
    const seen = await stack.sim.requests('ra-model');
    expect(seen).toHaveLength(2);
    const gap = Date.parse(String(seen[1]!.at)) - Date.parse(String(seen[0]!.at));
    // Upstream truth: the retry never arrives sooner than Retry-After after the first request.
    expect(gap).toBeGreaterThanOrEqual(1500);
    // Less the first attempt's own round trip and any stall, the retry came within 50 ms of
    // Retry-After (+ up to ~30 ms re-admission and send on a loaded box). The limiter's
    // cooldown for the same 429 counts from when the router received it (observed_at), so it
    // ends no later than the router's own wait.
    expect(waits).toHaveLength(1);
    expect(gap - res.attempts[0]!.latencyMs - stallMs).toBeLessThanOrEqual(1580);
    await stack.sim.setScenario(baseScenario);
  });

  describe('no call returns later than its deadline + 50 ms', () => {
    const scenarios: { name: string; route: string; deadlineMs: number; stream?: boolean }[] = [
      { name: 'slow deployment (600 ms) with a 300 ms deadline', route: 'chat-slow', deadlineMs: 300 },
      { name: 'every attempt 503 with backoff retries', route: 'chat-down', deadlineMs: 120 },
      { name: '503 then a slow fallback', route: 'chat-down-then-slow', deadlineMs: 400 },
      { name: 'upstream hangs (never answers)', route: 'chat-hangs', deadlineMs: 350 },
      { name: '429 with a Retry-After longer than the deadline', route: 'chat-limited', deadlineMs: 500 },
      { name: 'stream whose first token comes after the deadline', route: 'chat-slow', deadlineMs: 250, stream: true },
      { name: 'stream from a hanging upstream', route: 'chat-hangs', deadlineMs: 300, stream: true },
    ];
    it.each(scenarios)('$name', async ({ route, deadlineMs, stream }) => {
      // Stalls of this (shared, loaded) test process delay the client's own
      // deadline timer too; they are measured and excluded, the router's share is not.
      const lag = monitorEventLoopDelay({ resolution: 5 });
      lag.enable();
      const started = Date.now();
      let code: number | undefined;
      try {
        if (stream) {
          for await (const _ of stack.client.streamComplete(ask(route), { ...auth, deadlineMs })) void _;
        } else {
          await stack.client.complete(ask(route), { ...auth, deadlineMs });
        }
      } catch (err) {
        code = parseGrpcError(err).code;
      }
      const elapsed = Date.now() - started;
      lag.disable();
      const stallMs = lag.max / 1e6;
      if (elapsed - stallMs > deadlineMs + 50) console.warn({ elapsed, stallMs, deadlineMs });
      expect(code).toBeDefined();
      expect(elapsed - stallMs).toBeLessThanOrEqual(deadlineMs + 50);
    });

    it('fails fast (well before the deadline) when the only wait is a Retry-After that does not fit', async () => {
      const started = Date.now();
      const err = await stack.client.complete(ask('chat-limited'), { ...auth, deadlineMs: 1000 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(500);
      expect([status.RESOURCE_EXHAUSTED, status.UNAVAILABLE]).toContain(parseGrpcError(err).code);
    });

    it('skips a deployment whose observed latency exceeds the time left, and answers from a faster one in time', async () => {
      // Teach this replica the slow deployment's latency (local EWMA; the breaker's p50 works the same way).
      await stack.client.complete(ask('chat-slow'), { ...auth, deadlineMs: 5000 });
      await stack.sim.reset();
      const started = Date.now();
      const res = await stack.client.complete(ask('chat-slow-then-fast'), { ...auth, deadlineMs: 450 });
      expect(Date.now() - started).toBeLessThan(450);
      expect(res.servedBy!.deployment).toBe('fast');
      expect((await stack.sim.counters())['slow-model']?.received ?? 0).toBe(0);
    });
  });

  describe('stream timeouts fire at their configured times (± 100 ms)', () => {
    it('first-token timeout (300 ms): each timed-out attempt lasts ~300 ms, then the fallback answers', async () => {
      const finals = [];
      for await (const msg of stack.client.streamComplete(ask('chat-st-first'), auth)) if (msg.event.case === 'final') finals.push(msg.event.value);
      const final = finals[0]!;
      expect(final.servedBy!.deployment).toBe('fast');
      const timedOut = final.attempts.filter((a) => a.deployment!.deployment === 'st-first');
      expect(timedOut.length).toBeGreaterThanOrEqual(1);
      for (const a of timedOut) {
        expect(a.errorClass).toBe(ErrorClass.TIMEOUT);
        expect(a.latencyMs).toBeGreaterThanOrEqual(300 - 100);
        expect(a.latencyMs).toBeLessThanOrEqual(300 + 100);
      }
    });

    it('idle timeout (300 ms) after the first delta: partial content, then an INCOMPLETE final ~300 ms later', async () => {
      let firstDeltaAt = 0;
      let finalAt = 0;
      let text = '';
      let final;
      for await (const msg of stack.client.streamComplete(ask('chat-st-idle'), auth)) {
        if (msg.event.case === 'delta') {
          firstDeltaAt ||= Date.now();
          text += msg.event.value.text;
        } else if (msg.event.case === 'final') {
          finalAt = Date.now();
          final = msg.event.value;
        }
      }
      expect(text.length).toBeGreaterThan(0);
      expect(final!.finishReason).toBe(FinishReason.INCOMPLETE);
      expect(final!.errorClass).toBe(ErrorClass.STREAM_INTERRUPTED);
      expect(finalAt - firstDeltaAt).toBeGreaterThanOrEqual(300 - 100);
      expect(finalAt - firstDeltaAt).toBeLessThanOrEqual(300 + 100);
    });
  });

  it('sends a HALF_OPEN deployment exactly one probe across two router replicas; everyone else skips it', async () => {
    const breaker = createClient(BreakerService, stack.routerEnv.BREAKER_ADDR!, { defaultDeadlineMs: 5000, defaultMetadata: operatorMetadata });
    try {
      const second = await stack.startRouter();
      await breaker.forceState({ deployment: 'hp', state: CircuitState.HALF_OPEN, release: true, reason: 'probe test' });
      const until = Date.now() + 5000;
      while ((await breaker.getHealth({ deployment: 'hp' })).health?.state !== CircuitState.HALF_OPEN && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300)); // KV watch → both replicas' health replicas
      await stack.sim.reset();
      const calls = [stack.client, second.client, stack.client, second.client, stack.client, second.client].map((c) => c.complete(ask('chat-hp'), auth));
      const answers = await Promise.all(calls);
      expect((await stack.sim.counters())['hp-model']?.received).toBe(1);
      const byDeployment = answers.map((a) => a.servedBy!.deployment).sort();
      expect(byDeployment).toEqual(['fast', 'fast', 'fast', 'fast', 'fast', 'hp']);
      expect(answers.find((a) => a.servedBy!.deployment === 'hp')!.attempts[0]!.note).toMatch(/half-open probe/);
    } finally {
      breaker.close();
    }
  });

  describe('request coalescing (the cache key\'s single-flight lease)', () => {
    it('identical concurrent cacheable calls make one upstream call; the others get its answer marked COALESCED', async () => {
      await stack.sim.reset();
      const req = ask('chat-co', `coalesce me ${Math.random()}`);
      const answers = await Promise.all(Array.from({ length: 10 }, () => stack.client.complete(req, auth)));
      expect((await stack.sim.counters())['co-model']?.received).toBe(1);
      const statuses = answers.map((a) => CacheStatus[a.cacheStatus]).sort();
      expect(statuses).toEqual([...Array.from({ length: 9 }, () => 'COALESCED'), 'MISS']);
      const leader = answers.find((a) => a.cacheStatus === CacheStatus.MISS)!;
      expect(leader.costMicros).toBeGreaterThan(0n);
      for (const a of answers.filter((x) => x !== leader)) {
        expect(a.content).toBe(leader.content);
        expect(a.costMicros).toBe(0n);
        expect(a.attempts).toHaveLength(0);
        expect(a.requestId).not.toBe(leader.requestId);
      }
    });

    it('different prompts are not coalesced', async () => {
      await stack.sim.reset();
      const answers = await Promise.all(Array.from({ length: 3 }, (_, i) => stack.client.complete(ask('chat-co', `distinct ${i} ${Math.random()}`), auth)));
      expect(answers.map((a) => CacheStatus[a.cacheStatus])).toEqual(['MISS', 'MISS', 'MISS']);
      expect((await stack.sim.counters())['co-model']?.received).toBe(3);
    });
  });

  describe('idempotency keys (IDEMPOTENCY_WINDOW_MS, via the cache lease)', () => {
    it('20 concurrent duplicates → 1 upstream call and 20 identical answers; a later duplicate gets the stored one', async () => {
      await stack.sim.reset();
      const req = { ...ask('chat-idem', 'idempotent question'), idempotencyKey: `k-${Date.now()}` };
      const answers = await Promise.all(Array.from({ length: 20 }, () => stack.client.complete(req, auth)));
      expect((await stack.sim.counters())['idem-model']?.received).toBe(1);
      const first = answers[0]!;
      for (const a of answers) {
        expect(a.content).toBe(first.content);
        expect(a.requestId).toBe(first.requestId);
        expect(a.usage).toEqual(first.usage);
      }
      const later = await stack.client.complete(req, auth);
      expect(later.requestId).toBe(first.requestId);
      expect((await stack.sim.counters())['idem-model']?.received).toBe(1);
    });

    it('with a deadline over a minute (a job\'s is its expiry), duplicates are still answered from the first call: 1 upstream call', async () => {
      await stack.sim.reset();
      const req = { ...ask('chat-idem', 'a long-deadline idempotent question'), idempotencyKey: `l-${Date.now()}` };
      const long = { ...auth, deadlineMs: 15 * 60_000 };
      const answers = await Promise.all(Array.from({ length: 4 }, () => stack.client.complete(req, long)));
      const later = await stack.client.complete(req, long);
      expect((await stack.sim.counters())['idem-model']?.received).toBe(1);
      for (const a of [...answers, later]) {
        expect(a.requestId).toBe(answers[0]!.requestId);
        expect(a.degradedReason).not.toContain('idempotency');
      }
    });

    it('the same key with a different request is refused with FAILED_PRECONDITION naming the key, not answered with the first answer', async () => {
      await stack.sim.reset();
      const key = `r-${Date.now()}`;
      const first = await stack.client.complete({ ...ask('chat-idem', 'charge my card once'), idempotencyKey: key }, auth);
      expect(first.content.length).toBeGreaterThan(0);
      const err = await stack.client.complete({ ...ask('chat-idem', 'refund my card'), idempotencyKey: key }, auth).then(
        () => {
          throw new Error('expected an error');
        },
        (e: unknown) => parseGrpcError(e),
      );
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.message).toContain(`idempotency_key "${key}"`);
      // Nothing ran for the second request; the first answer still replays to its own request.
      expect((await stack.sim.counters())['idem-model']?.received).toBe(1);
      const again = await stack.client.complete({ ...ask('chat-idem', 'charge my card once'), idempotencyKey: key }, auth);
      expect(again.requestId).toBe(first.requestId);
    });

    it('a leader whose caller leaves mid-call still finishes and keeps its answer: a later retry with the key replays it, no second upstream call', async () => {
      await stack.sim.reset();
      const req = { ...ask('chat-idem', 'finish me even if I go'), idempotencyKey: `g-${Date.now()}` };
      // The caller gives up once its request is upstream; the provider answers 300 ms after it arrived (idem-model).
      const gone = new AbortController();
      const first = stack.client.complete(req, { ...auth, signal: gone.signal, deadlineMs: 5_000 });
      while (((await stack.sim.counters())['idem-model']?.received ?? 0) === 0) await new Promise((r) => setTimeout(r, 10));
      gone.abort();
      await expect(first).rejects.toBeDefined();
      // The retry (a redelivered job, a reconnected client) comes after the provider has answered: no overlap with the leader.
      await new Promise((r) => setTimeout(r, 600));
      const retried = await stack.client.complete(req, { ...auth, deadlineMs: 5_000 });
      expect(retried.content.length).toBeGreaterThan(0);
      expect((await stack.sim.counters())['idem-model']?.received).toBe(1);
    });

    it('a failed first call does not stick: the caller retries with the same key and it runs again', async () => {
      await stack.sim.setScenario({ ...baseScenario, deployments: { ...baseScenario.deployments, 'idem-model': { faults: { not_found: 1 } } } });
      await stack.sim.reset();
      const req = { ...ask('chat-idem', 'retry me'), idempotencyKey: `f-${Date.now()}` };
      await expect(stack.client.complete(req, auth)).rejects.toBeDefined();
      await stack.sim.setScenario(baseScenario);
      const res = await stack.client.complete(req, auth);
      expect(res.content.length).toBeGreaterThan(0);
      expect((await stack.sim.counters())['idem-model']?.received).toBe(2);
    });

    it('StreamComplete: 20 concurrent duplicates → 1 upstream call and 20 identical streams; later duplicates (stream or Complete) replay it', async () => {
      await stack.sim.reset();
      const req = { ...ask('chat-idem', 'idempotent stream'), idempotencyKey: `s-${Date.now()}` };
      const streams = await Promise.all(Array.from({ length: 20 }, () => readStream(stack, req)));
      expect((await stack.sim.counters())['idem-model']?.received).toBe(1);
      const leader = streams.find((s) => s.deltas.length > 1) ?? streams[0]!;
      expect(leader.text.length).toBeGreaterThan(0);
      expect(leader.final!.finishReason).not.toBe(FinishReason.INCOMPLETE);
      for (const s of streams) {
        expect(s.finals).toHaveLength(1);
        expect(s.text).toBe(leader.text);
        expect(s.final!.finishReason).toBe(leader.final!.finishReason);
        expect(s.final!.requestId).toBe(leader.final!.requestId);
        expect(s.final!.usage).toEqual(leader.final!.usage);
      }

      const later = await readStream(stack, req);
      expect(later.deltas).toEqual([leader.text]);
      expect(later.final!.requestId).toBe(leader.final!.requestId);
      // Same stored shape as Complete's, so Complete with the key gets the whole streamed answer.
      const asComplete = await stack.client.complete(req, auth);
      expect(asComplete.content).toBe(leader.text);
      expect(asComplete.requestId).toBe(leader.final!.requestId);
      expect((await stack.sim.counters())['idem-model']?.received).toBe(1);
    });

    it('StreamComplete: a stream cut after its first chunk is not kept; the same key runs upstream again', async () => {
      await stack.sim.setScenario({ ...baseScenario, deployments: { ...baseScenario.deployments, 'idem-model': { cutAfterChunks: 1, reply: { minTokens: 10, maxTokens: 12 } } } });
      await stack.sim.reset();
      const req = { ...ask('chat-idem', 'cut me'), idempotencyKey: `c-${Date.now()}` };
      const cut = await readStream(stack, req);
      expect(cut.deltas.length).toBeGreaterThan(0);
      expect(cut.final!.finishReason).toBe(FinishReason.INCOMPLETE);
      await stack.sim.setScenario(baseScenario);
      const retried = await readStream(stack, req);
      expect(retried.final!.finishReason).not.toBe(FinishReason.INCOMPLETE);
      expect(retried.final!.requestId).not.toBe(cut.final!.requestId);
      expect((await stack.sim.counters())['idem-model']?.received).toBe(2);
    });

    it('StreamComplete: a stream that fails before any output gives the key back', async () => {
      await stack.sim.setScenario({ ...baseScenario, deployments: { ...baseScenario.deployments, 'idem-model': { faults: { not_found: 1 } } } });
      await stack.sim.reset();
      const req = { ...ask('chat-idem', 'fail my stream'), idempotencyKey: `e-${Date.now()}` };
      await expect(readStream(stack, req)).rejects.toBeDefined();
      await stack.sim.setScenario(baseScenario);
      const retried = await readStream(stack, req);
      expect(retried.final!.finishReason).not.toBe(FinishReason.INCOMPLETE);
      expect((await stack.sim.counters())['idem-model']?.received).toBe(2);
    });
  });
});
