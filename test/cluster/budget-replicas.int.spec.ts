/**
 * Issue 10 part 3, cluster proof: a crashed budget replica costs no money.
 * Three budget replicas (own processes) on one Redis, three routers
 * (in-process start(), each given all three budget replicas), limiter,
 * breaker and cache processes, NATS and the provider simulator (700 ms per
 * answer, so calls are upstream when the replica dies). One tenant with a
 * hard day cap that the offered load exceeds about three times over. A
 * budget replica is SIGKILLed mid-load and restarted on its port.
 * Asserted:
 *  - true spend (the simulator's billed tokens × the price table) ≤ the cap,
 *    and the budget recorded at least that much (no Commit lost);
 *  - every caller got a definite answer before its deadline: OK, or a
 *    budget refusal that says so;
 *  - no caller was refused while spend + live reservations left room for
 *    its call, for longer than the reservation TTL.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BudgetService, Role, RouterService } from '@switchyard/contracts';
import { hashApiKey } from '@switchyard/config';
import { createClient, parseGrpcError, status } from '@switchyard/grpc';
import { loadConfig as routerConfig, start as startRouter } from '@switchyard/router';
import type { RunningService } from '@switchyard/runtime';
import { type ServerHandle, type SimulatorHandle, type SpawnedProcess, spawnProcess, spawnSimulator, startNats, startRedis } from '@switchyard/testing';

const ROOT = resolve(__dirname, '../..');
const API_KEY = 'sk-budget-cluster';
const ROUTERS = 3;
const LOOPS_PER_ROUTER = 6;
const CAP_USD = 3;
const CAP_MICROS = CAP_USD * 1_000_000;
/** Price table below, per token in micro-USD (USD per million tokens = micro-USD per token). */
const IN_MICROS = 1_000;
const OUT_MICROS = 2_000;
const TTL_MS = 3_000;
const LOAD_MS = 10_000;
const KILL_AT_MS = 1_000;
/** The replica stays dead longer than a reservation lives, then restarts on its port. */
const DOWN_MS = 3_500;
const CALL_DEADLINE_MS = 10_000;
const UPSTREAM_MS = 700;

const config = `
deployments:
  gpt:
    provider: openai
    baseUrl: \${SIMULATOR_URL}/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 1000000, tpm: 1000000000 }
    price: { inputPerMillionUsd: ${IN_MICROS}, outputPerMillionUsd: ${OUT_MICROS} }
routes:
  chat:
    candidates:
      - { deployment: gpt, priority: 0 }
tenants:
  acme:
    apiKeys: [{ id: acme-budget-cluster, sha256: ${hashApiKey(API_KEY)} }]
    budgets: [{ period: day, limitUsd: ${CAP_USD}, hard: true }]
defaults:
  retry: { maxAttempts: 1, baseMs: 10, capMs: 50 }
`;

interface CallRecord {
  start: number;
  end: number;
  code: number;
  message: string;
  /** The call's worst case, from a budget refusal's details. */
  requestedMicros?: number;
}
interface BudgetSample {
  at: number;
  spent: number;
  reserved: number;
}

describe('budget replicas: one SIGKILLed mid-load, a hard cap the load exceeds 3×', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  let simulator: SimulatorHandle;
  const procs: SpawnedProcess[] = [];
  const budgets: SpawnedProcess[] = [];
  const routers: RunningService[] = [];
  const warnings: string[] = [];
  let spawnBudget: (port?: number) => Promise<SpawnedProcess>;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
    simulator = await spawnSimulator({
      scenario: { seed: 10, deployments: { 'gpt-4o': { latency: { firstToken: { fixed: UPSTREAM_MS } }, reply: { minTokens: 20, maxTokens: 40 } } } },
    });
    const dir = mkdtempSync(join(tmpdir(), 'sy-budget-cluster-'));
    const configPath = join(dir, 'switchyard.yaml');
    writeFileSync(configPath, config);
    const env = {
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      SWITCHYARD_CONFIG: configPath,
      SIMULATOR_URL: simulator.url,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      OPENAI_API_KEY: 'sk-sim-openai',
      OTEL_SDK_DISABLED: 'true',
      LOG_LEVEL: 'warn',
    };
    const spawn = (name: string, extra: Record<string, string> = {}) =>
      spawnProcess({ entry: join(ROOT, `services/${name}/src/main.ts`), env: { ...env, ...extra }, readyTimeoutMs: 90_000 });
    spawnBudget = (port = 0) => spawn('budget', { BUDGET_RESERVATION_TTL_MS: String(TTL_MS), GRPC_PORT: String(port) });
    const started = await Promise.all([spawn('limiter'), spawn('breaker'), spawn('cache'), spawnBudget(), spawnBudget(), spawnBudget()]);
    const [limiter, breaker, cache, ...budgetReplicas] = started;
    procs.push(limiter!, breaker!, cache!);
    budgets.push(...budgetReplicas);

    const logger = {
      info() {},
      warn: (obj: object, msg?: string) => void warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`),
      error: (obj: object, msg?: string) => void warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`),
    };
    for (let i = 0; i < ROUTERS; i++) {
      routers.push(
        await startRouter(
          routerConfig({
            ...env,
            ROUTER_REPLICA_ID: `router-${i}`,
            LIMITER_ADDR: `127.0.0.1:${limiter!.port}`,
            BREAKER_ADDR: `127.0.0.1:${breaker!.port}`,
            CACHE_ADDR: `127.0.0.1:${cache!.port}`,
            BUDGET_ADDR: budgets.map((b) => `127.0.0.1:${b.port}`).join(','),
            SETTLE_RETRY_WINDOW_MS: String(TTL_MS),
            // Peer hops are not this test's subject (a starved runner is slow to answer).
            PEER_DEADLINE_MS: '2000',
          }),
          { logger },
        ),
      );
    }
  }, 180_000);

  afterAll(async () => {
    for (const r of routers) await r.stop().catch(() => undefined);
    await Promise.all([...procs, ...budgets].map((p) => p.stop().catch(() => undefined)));
    await simulator?.stop();
    await Promise.all([nats?.stop(), redis?.stop()]);
  }, 60_000);

  it('spends at most the cap, answers every caller, refuses no one with room for longer than the reservation TTL', async () => {
    // Spend and live reservations, read from a replica that is never killed.
    const observer = createClient(BudgetService, `127.0.0.1:${budgets[2]!.port}`, { defaultDeadlineMs: 2_000 });
    const samples: BudgetSample[] = [];
    const calls: CallRecord[] = [];
    let stopLoad = false;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const at = Date.now();
        const res = await observer.getBudget({ tenant: 'acme' }).catch(() => undefined);
        const cap = res?.caps[0];
        if (cap) samples.push({ at, spent: Number(cap.spentMicros), reserved: Number(cap.reservedMicros) });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const clients = routers.map((r) =>
      createClient(RouterService, `127.0.0.1:${r.port}`, { defaultDeadlineMs: CALL_DEADLINE_MS, defaultMetadata: { 'x-api-key': API_KEY } }),
    );
    let seq = 0;
    const loop = async (client: (typeof clients)[number]) => {
      while (!stopLoad) {
        const start = Date.now();
        try {
          await client.complete({
            route: 'chat',
            // Unique prompts of one length: no cache hits, one worst case for every call.
            messages: [{ role: Role.USER, content: `budget load call ${String(seq++).padStart(6, '0')}` }],
            params: { maxTokens: 40 },
          });
          calls.push({ start, end: Date.now(), code: status.OK, message: '' });
        } catch (err) {
          const parsed = parseGrpcError(err);
          const requested = parsed.details.errorInfo?.metadata['requested_micros'];
          calls.push({ start, end: Date.now(), code: parsed.code, message: parsed.message, ...(requested ? { requestedMicros: Number(requested) } : {}) });
          // A refused caller tries again soon, as a real client would.
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const loadStart = Date.now();
    const loops = clients.flatMap((c) => Array.from({ length: LOOPS_PER_ROUTER }, () => loop(c)));

    await new Promise((r) => setTimeout(r, KILL_AT_MS));
    const killedPort = budgets[0]!.port;
    await budgets[0]!.kill();
    const killedAt = Date.now();
    // Restarted on its port; the load does not wait for it (a starved runner takes long to start a process).
    const restart = new Promise((r) => setTimeout(r, DOWN_MS)).then(async () => {
      const spawnedAt = Date.now();
      budgets[0] = await spawnBudget(killedPort);
      return { spawnedAt, readyAt: Date.now() };
    });
    await new Promise((r) => setTimeout(r, Math.max(0, loadStart + LOAD_MS - Date.now())));
    stopLoad = true;
    await Promise.all(loops);
    const loadEnd = Date.now();
    clients.forEach((c) => c.close());
    const restarted = await restart;

    // Let every Commit land (retries included): no reservation left live.
    const drainDeadline = Date.now() + TTL_MS + 5_000;
    while (Date.now() < drainDeadline && (samples.at(-1)?.reserved ?? 1) > 0) await new Promise((r) => setTimeout(r, 100));
    sampling = false;
    await sampler;
    const final = (await observer.getBudget({ tenant: 'acme' })).caps[0]!;
    observer.close();

    const usage = (await simulator.counters())['gpt-4o']!.usage;
    const trueSpend = usage.inputTokens * IN_MICROS + usage.outputTokens * OUT_MICROS;
    const recordedSpend = Number(final.spentMicros);
    const ok = calls.filter((c) => c.code === status.OK);
    const refused = calls.filter((c) => c.code !== status.OK);
    const worstCase = Math.max(0, ...refused.map((c) => c.requestedMicros ?? 0));

    // Wrongly refused: a refusal while spend + live reservations (the highest
    // sampled within 300 ms of it) left room for the call's worst case.
    const committedAround = (t: number) => Math.max(...samples.filter((s) => Math.abs(s.at - t) <= 300).map((s) => s.spent + s.reserved));
    const wrong = refused.filter((c) => CAP_MICROS - committedAround(c.end) >= worstCase).map((c) => c.end).sort((a, b) => a - b);
    // Episodes: wrong refusals less than a second apart belong together.
    const episodes: [number, number][] = [];
    for (const t of wrong) {
      const last = episodes.at(-1);
      if (last && t - last[1] < 1_000) last[1] = t;
      else episodes.push([t, t]);
    }
    const longestWrongMs = Math.max(0, ...episodes.map(([a, b]) => b - a));
    const byMessage: Record<string, number> = {};
    for (const c of refused) {
      const kind = `${status[c.code]}: ${c.message.replace(/\d+/g, 'N').slice(0, 90)}`;
      byMessage[kind] = (byMessage[kind] ?? 0) + 1;
    }
    const unavailableRefusals = refused.filter((c) => c.code === status.UNAVAILABLE).length;
    const inFlightAtKill = ok.filter((c) => c.start < killedAt && c.end > killedAt).length;
    const firstCapRefusal = Math.min(...refused.filter((c) => c.code === status.RESOURCE_EXHAUSTED).map((c) => c.end));
    console.log(
      `budget replicas: ${JSON.stringify({
        loadMs: loadEnd - loadStart,
        killedAtMs: killedAt - loadStart,
        upstreamAtKill: inFlightAtKill,
        firstCapRefusalMs: Number.isFinite(firstCapRefusal) ? firstCapRefusal - loadStart : null,
        restartMs: [restarted.spawnedAt - loadStart, restarted.readyAt - loadStart],
        calls: calls.length,
        ok: ok.length,
        refused: byMessage,
        worstCaseMicros: worstCase,
        offeredTimesCap: Number(((calls.length * worstCase) / CAP_MICROS).toFixed(2)),
        capMicros: CAP_MICROS,
        trueSpendMicros: trueSpend,
        trueSpendPercentOfCap: Number(((100 * trueSpend) / CAP_MICROS).toFixed(1)),
        recordedSpendMicros: recordedSpend,
        wrongRefusals: wrong.length,
        wrongEpisodesMs: episodes.map(([a, b]) => b - a),
        maxCallMs: Math.max(...calls.map((c) => c.end - c.start)),
        routerWarnings: warnings.length,
        firstWarning: warnings[0]?.slice(0, 300),
      })}`,
    );

    // The load was real: calls were upstream when the replica died, several caps' worth
    // of worst cases were offered, and the cap was reached.
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(worstCase).toBeGreaterThan(0);
    expect(calls.length * worstCase).toBeGreaterThanOrEqual(2 * CAP_MICROS);
    expect(trueSpend).toBeGreaterThan(CAP_MICROS - LOOPS_PER_ROUTER * ROUTERS * worstCase);
    // No money lost: what the provider billed stays within the hard cap.
    expect(trueSpend).toBeLessThanOrEqual(CAP_MICROS);
    // Every Commit landed: the budget recorded all of it. More only by reservations the
    // killed replica took and never answered (their callers were refused), charged at expiry.
    expect(recordedSpend).toBeGreaterThanOrEqual(trueSpend);
    expect(recordedSpend - trueSpend).toBeLessThanOrEqual(unavailableRefusals * worstCase);
    expect(Number(final.reservedMicros)).toBe(0);
    // The restarted replica serves again, from the same state.
    const restartedClient = createClient(BudgetService, `127.0.0.1:${killedPort}`, { defaultDeadlineMs: 10_000 });
    try {
      expect(Number((await restartedClient.getBudget({ tenant: 'acme' })).caps[0]!.spentMicros)).toBe(recordedSpend);
    } finally {
      restartedClient.close();
    }
    // A definite answer for everyone, in time: served, or refused by the budget saying so.
    for (const c of calls) expect(c.end - c.start).toBeLessThan(CALL_DEADLINE_MS);
    for (const c of refused) {
      expect({ code: status[c.code], message: c.message }).toEqual({
        code: expect.stringMatching(/^(RESOURCE_EXHAUSTED|UNAVAILABLE)$/),
        message: expect.stringMatching(/budget/),
      });
    }
    // Refused with room only momentarily (calls in flight on the replica as it died), never for a TTL.
    expect(longestWrongMs).toBeLessThan(TTL_MS);
  }, 120_000);
});
