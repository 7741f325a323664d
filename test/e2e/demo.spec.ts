import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { startOtlpReceiver, type OtlpReceiver } from '@switchyard/testing';

const ROOT = resolve(__dirname, '../..');

/** Runs `npm run demo`'s entry point (embedded mode) the way a fresh clone would and returns its output. */
function runDemo(env: Record<string, string | undefined>): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete childEnv.REDIS_URL;
    delete childEnv.NATS_URL;
    const child = spawn(process.execPath, [resolve(ROOT, 'scripts/demo.js')], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.once('error', fail);
    child.once('close', (code) => done({ code, output }));
  });
}

describe('npm run demo (embedded)', () => {
  let otlp: OtlpReceiver;
  beforeAll(async () => {
    otlp = await startOtlpReceiver();
  });
  afterAll(() => otlp.stop());

  it('serves every call, opens the breaker once when the primary fails, and moves traffic to the fallback', async () => {
    // Exporting to a local OTLP receiver, as to a Jaeger: the demo must say where, and link the trace it prints.
    const { code, output } = await runDemo({ DEMO_CALLS: '60', ...otlp.env, JAEGER_UI_URL: 'http://jaeger.test:16686' });
    expect({ code, tail: output.slice(-2000) }).toEqual({ code: 0, tail: expect.any(String) });
    expect(output).toMatch(/successes\s+60 \(0 failed\)/);
    const served = (name: string) => Number(new RegExp(`served by ${name}\\s+(\\d+)`).exec(output)?.[1] ?? 0);
    // Calls before the outage (24) go to OpenAI; after the breaker opens, Anthropic serves.
    expect(served('openai-gpt4o')).toBeGreaterThanOrEqual(20);
    expect(served('anthropic-sonnet')).toBeGreaterThanOrEqual(30);
    expect(served('openai-gpt4o') + served('anthropic-sonnet')).toBe(60);
    expect(output).toMatch(/breaker transitions\s+openai-gpt4o CLOSED→OPEN \(5 consecutive failures\)\n/);
    // 6 calls repeat an earlier question; a repeat can race the (off-path) store of its original, so not all 6 must hit.
    const hits = Number(/cache hits\s+(\d+)/.exec(output)?.[1] ?? -1);
    expect(hits).toBeGreaterThanOrEqual(3);
    expect(hits).toBeLessThanOrEqual(6);
    const traceId = /trace of one failover call\s+([0-9a-f]{32}) \(\d+ spans\)/.exec(output)?.[1];
    expect(traceId).toBeDefined();
    expect(output).toContain(`traces: OTLP ${otlp.url}/v1/traces (http/json)\n`);
    expect(output).toContain(`open in Jaeger: http://jaeger.test:16686/trace/${traceId}\n`);
    // The printed trace went where the demo said: its root span reached the receiver before the demo exited.
    expect(otlp.spans().filter((s) => s.traceId === traceId).map((s) => s.name)).toContain('demo call');
  }, 120_000);
});
