import { monitorEventLoopDelay } from 'node:perf_hooks';
import { hashApiKey } from '@switchyard/config';
import { Role } from '@switchyard/contracts';
import { countChatTokens } from '@switchyard/tokens';
import { startStack, type Stack } from './stack';

/**
 * Issue 10.1: one tenant's prompt must not stall a router for everyone else.
 * Tenant B sends the largest prompt the request limits allow
 * (defaults.requestLimits.maxPromptChars = 1,000,000) with no whitespace at
 * all (random DNA: one 1 MB pre-tokenized piece), while tenant A keeps making
 * ordinary calls on the same router. The router, its peers and this test
 * share one event loop, and the simulator (its own process) counts B's prompt
 * too, so any super-linear step on B's path shows up in A's latency.
 *
 * Before the linear token count, the router's pre-call estimate alone blocked
 * the loop for minutes on this prompt (120,000 such characters took ~7 s):
 * A's calls stalled past their deadline and this test never got to compare.
 */

const A_KEY = 'tenant-a-key';
const B_KEY = 'tenant-b-key';
const asA = { metadata: { 'x-api-key': A_KEY } };
const asB = { metadata: { 'x-api-key': B_KEY } };

/** Upstream answer time of every call: a realistic floor for A's latency (LLM calls take hundreds of ms). */
const UPSTREAM_MS = 300;
const MAX_PROMPT_CHARS = 1_000_000;

function gatewayYaml(sim: string): string {
  return `
deployments:
  steady:
    provider: openai
    baseUrl: ${sim}/v1
    model: steady-model
    apiKey: env:SIM_PROVIDER_KEY
    limits: { rpm: 100000, tpm: 1000000000 }
    # The router skips, before sending, a deployment whose window cannot hold the prompt: declare the simulator's.
    contextWindow: 2000000
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }
routes:
  chat: { cacheable: true, candidates: [{ deployment: steady }] }
tenants:
  a:
    apiKeys: [{ id: a-main, sha256: ${hashApiKey(A_KEY)} }]
  b:
    apiKeys: [{ id: b-main, sha256: ${hashApiKey(B_KEY)} }]
defaults:
  breaker: { consecutiveFailures: 1000 }
  requestLimits: { maxPromptChars: ${MAX_PROMPT_CHARS} }
`;
}

const scenario = {
  seed: 3,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  // A context window the hostile prompt fits, so it goes all the way upstream and back.
  deployments: { 'steady-model': { latency: { firstToken: UPSTREAM_MS }, contextWindow: 2_000_000 } },
};

function dna(chars: number, seed: number): string {
  let state = seed;
  const out: string[] = [];
  for (let i = 0; i < chars; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out.push('acgt'[(state >>> 0) % 4]!);
  }
  return out.join('');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('a maximal whitespace-free prompt on one router (issue 10.1)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario);
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  /** Tenant A's ordinary call; distinct content so every call misses the cache and goes upstream. */
  let n = 0;
  const ordinaryCall = async (): Promise<number> => {
    const started = performance.now();
    const res = await stack.client.complete(
      { route: 'chat', messages: [{ role: Role.USER, content: `What is the status of order ${++n}? Answer briefly.` }], params: { maxTokens: 16 } },
      { ...asA, deadlineMs: 20_000 },
    );
    expect(res.content.length).toBeGreaterThan(0);
    return performance.now() - started;
  };

  /** Two of tenant A's callers in a closed loop until `done()`; each call's latency. */
  const runA = async (done: () => boolean): Promise<number[]> => {
    const latencies: number[] = [];
    await Promise.all(
      [0, 1].map(async () => {
        while (!done()) latencies.push(await ordinaryCall());
      }),
    );
    return latencies;
  };

  it("keeps tenant A's latency within 4× of its baseline while tenant B sends 1,000,000 characters without whitespace", async () => {
    // Warm up: the tokenizer's tables, JIT, connections.
    for (let i = 0; i < 3; i++) await ordinaryCall();

    let baselineCalls = 0;
    const baseline = await runA(() => ++baselineCalls > 16);

    const prompts = [dna(MAX_PROMPT_CHARS, 0x1234567), dna(MAX_PROMPT_CHARS, 0x7654321), dna(MAX_PROMPT_CHARS, 0x2468ace)];
    const lag = monitorEventLoopDelay({ resolution: 10 });
    let hostileDone = false;
    const hostile = (async () => {
      const answers = [];
      // Back to back, so A's calls overlap the hostile work for the whole window.
      for (const content of prompts) {
        answers.push(await stack.client.complete({ route: 'chat', messages: [{ role: Role.USER, content }], params: { maxTokens: 16 } }, { ...asB, deadlineMs: 60_000 }));
      }
      hostileDone = true;
      return answers;
    })();
    lag.enable();
    const [during, answers] = await Promise.all([runA(() => hostileDone), hostile]);
    lag.disable();

    // B's calls were served, and billed as the simulator counts them (the same linear count).
    for (const [i, res] of answers.entries()) {
      expect(res.usage?.inputTokens).toBe(countChatTokens([{ role: 'user', content: prompts[i]! }], 'openai'));
    }
    const ratio = median(during) / median(baseline);
    const report = {
      baselineMedianMs: Math.round(median(baseline)),
      duringMedianMs: Math.round(median(during)),
      duringMaxMs: Math.round(Math.max(...during)),
      duringCalls: during.length,
      maxLoopStallMs: Math.round(lag.max / 1e6),
      ratio: Number(ratio.toFixed(2)),
    };
    // Printed so a failure (and a pass) says what was measured.
    console.log(`hostile prompt: ${JSON.stringify(report)}`);
    expect(during.length).toBeGreaterThanOrEqual(4);
    // Measured on the 2-core dev box while ~9 other sessions loaded it
    // (load average 8-17): ratio 1.5, 2.2, 2.3, 2.7, 2.8 in five runs, loop
    // stalls 0.3-0.9 s per hostile call, of which the token count is ~half
    // (the rest: protobuf encode in this process, decode, JSON to the
    // simulator). A stall only
    // adds itself to the calls it overlaps, so 4× leaves room for a runner
    // slower still, while the defect this guards against (the count alone
    // blocking for minutes on this prompt) cannot come near it.
    expect(report.ratio).toBeLessThanOrEqual(4);
  }, 240_000);
});
