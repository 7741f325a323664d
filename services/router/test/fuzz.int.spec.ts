import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { hashApiKey } from '@switchyard/config';
import { CompleteRequestSchema, StreamCompleteRequestSchema } from '@switchyard/contracts';
import { credentials, Metadata, status } from '@switchyard/grpc';
import { spawnProcess, type SpawnedProcess } from '@switchyard/testing';
import { Client as GrpcClient } from '@grpc/grpc-js';
import fc from 'fast-check';
import { startStack, type Stack } from './stack';

/**
 * Property-based fuzz of the router's public request messages (issue 10.2):
 * random sizes, unicode (lone surrogates, and invalid UTF-8 on the wire, which
 * no well-behaved client can even send), empty and absurd values (NaN,
 * ±Infinity, huge and negative numbers, unknown enum values), and plain
 * garbage bytes. Every call must end with a definite status before its
 * deadline, and the router, run as its own process, must neither crash nor
 * log an unhandled rejection or an unexpected error.
 *
 * Reproducible: FUZZ_SEED (default below) and FUZZ_RUNS (default 200, about
 * 5-10 s of calls after a 15 s start here) choose the cases; a failure prints
 * the seed and path to replay. FUZZ_VERBOSE=1 prints how the calls ended.
 * Without the bounded status mapping this fails on a 10,000-character route
 * (DEADLINE_EXCEEDED); without the decode fallback, on invalid UTF-8 (INTERNAL).
 */

const KEY = 'fuzz-key';
const SEED = Number(process.env.FUZZ_SEED ?? 1_006_002);
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
/** Far beyond any answer of this stack: a call still running then has no definite status. */
const CALL_DEADLINE_MS = 8_000;

function gatewayYaml(sim: string): string {
  return `
deployments:
  fast:
    provider: openai
    baseUrl: ${sim}/v1
    model: fast-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }
  claude:
    provider: anthropic
    baseUrl: ${sim}
    model: claude-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 5 }
routes:
  chat: { candidates: [{ deployment: fast }, { deployment: claude, priority: 1 }] }
  claude: { cacheable: false, candidates: [{ deployment: claude }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
    budgets: [{ period: day, limitUsd: 1000 }]
`;
}

const scenario = {
  seed: 5,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: { 'fast-model': { reply: { minTokens: 3, maxTokens: 8 } }, 'claude-model': { reply: { minTokens: 3, maxTokens: 8 } } },
};

// ---- arbitraries -----------------------------------------------------------

/** Any UTF-16 code units, lone surrogates included (fc's own unicode strings are well-formed). */
const utf16 = (maxLength: number) => fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength }).map((units) => String.fromCharCode(...units));

/** Long runs of one character: sizes around every bound, a valid whitespace-free prompt of 300,000, and beyond the prompt limit (1,000,000). */
const long = fc
  .tuple(fc.constantFrom('x', ' ', 'é', '中', '😀', '\uD800', '\u0000'), fc.constantFrom(64, 65, 128, 129, 256, 257, 10_000, 300_000, 1_100_000))
  .map(([ch, n]) => ch.repeat(n));

const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: utf16(40) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\n\t ', 'chat', 'claude', 'toString', '__proto__', 'constructor') },
  { weight: 1, arbitrary: long },
);

/** int32 enum numbers: the defined ones, and anything else the wire can carry. */
const enumValue = (defined: number) => fc.oneof(fc.integer({ min: 0, max: defined }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));

const message = fc.record({ role: enumValue(3), content: fc.oneof({ weight: 5, arbitrary: text }, { weight: 1, arbitrary: fc.constant('hello there') }) });

const messages = fc.oneof(
  { weight: 8, arbitrary: fc.array(message, { maxLength: 6 }) },
  // Many copies of one short message: counts around and far beyond maxMessages (256).
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.record({ role: enumValue(3), content: fc.string({ maxLength: 8 }) }), fc.integer({ min: 250, max: 20_000 }))
      .map(([m, n]) => Array.from({ length: n }, () => m)),
  },
);

const absurdDouble = fc.oneof(fc.double({ min: 0, max: 2 }), fc.double(), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0));

const params = fc.option(
  fc.record(
    {
      maxTokens: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 0xffffffff })),
      temperature: absurdDouble,
      topP: absurdDouble,
      stop: fc.oneof({ weight: 6, arbitrary: fc.array(text, { maxLength: 6 }) }, { weight: 1, arbitrary: fc.array(fc.constant('s'), { minLength: 5, maxLength: 50_000 }) }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

/** A request the router should answer: the baseline the mutations start from. */
const validRequest = fc.record({
  route: fc.constantFrom('chat', 'claude'),
  messages: fc
    .tuple(fc.array(fc.record({ role: fc.constantFrom(1, 3), content: fc.string({ minLength: 1, maxLength: 30 }).map((t) => `m ${t}`) }), { maxLength: 2 }), fc.string({ maxLength: 200 }))
    .map(([before, last]) => [...before, { role: 2, content: `question ${last}` }]),
  params: fc.record({ maxTokens: fc.integer({ min: 0, max: 64 }), temperature: fc.double({ min: 0, max: 2, noNaN: true }), stop: fc.array(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 4 }) }, { requiredKeys: [] }),
  userId: fc.string({ maxLength: 40 }),
  feature: fc.stringMatching(/^[A-Za-z0-9_.-]{0,64}$/),
  idempotencyKey: fc.oneof(fc.constant(''), fc.uuid()),
  cachePolicy: fc.record({ mode: fc.integer({ min: 0, max: 4 }), allowStaleOnError: fc.boolean() }, { requiredKeys: [] }),
});

const wildRequest = fc.record(
  {
    route: fc.oneof({ weight: 3, arbitrary: fc.constantFrom('chat', 'claude') }, { weight: 2, arbitrary: text }),
    messages,
    params,
    userId: text,
    feature: fc.oneof(fc.constantFrom('', 'search', 'a.b-c_d'), text),
    idempotencyKey: fc.oneof(fc.constant(''), text),
    cachePolicy: fc.option(fc.record({ mode: enumValue(4), allowStaleOnError: fc.boolean() }, { requiredKeys: [] }), { nil: undefined }),
  },
  { requiredKeys: ['route', 'messages'] },
);

type Fields = typeof wildRequest extends fc.Arbitrary<infer R> ? R : never;

/** Valid requests, valid requests with one field gone wild, and wholly wild ones. */
const request: fc.Arbitrary<Fields> = fc.oneof(
  { weight: 3, arbitrary: validRequest },
  {
    weight: 4,
    arbitrary: fc
      .tuple(validRequest, wildRequest, fc.constantFrom<keyof Fields>('route', 'messages', 'params', 'userId', 'feature', 'idempotencyKey', 'cachePolicy'))
      .map(([valid, wild, key]) => ({ ...valid, [key]: wild[key] })),
  },
  { weight: 3, arbitrary: wildRequest },
);

/** Bytes a real client never sends: a string field (route, user_id, feature, idempotency_key) repeated with invalid UTF-8; last one wins. */
const invalidUtf8 = fc.option(
  fc.tuple(fc.constantFrom(1, 4, 5, 6), fc.constantFrom<number[]>([0xff], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xe4, 0xb8], [0x61, 0xf8, 0x88, 0x80, 0x80, 0x80])),
  { nil: undefined, freq: 4 },
);

type Body = { kind: 'message'; request: Fields; invalid?: [number, number[]] } | { kind: 'garbage'; bytes: Uint8Array };

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('message' as const), request, invalid: invalidUtf8 }, { requiredKeys: ['kind', 'request'] }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 64 }) }) },
);

// ---- the calls --------------------------------------------------------------

function encode(b: Body, streaming: boolean): Buffer {
  if (b.kind === 'garbage') return Buffer.from(b.bytes);
  const encoded = streaming ? toBinary(StreamCompleteRequestSchema, create(StreamCompleteRequestSchema, b.request)) : toBinary(CompleteRequestSchema, create(CompleteRequestSchema, b.request));
  if (!b.invalid) return Buffer.from(encoded);
  const [field, bytes] = b.invalid;
  return Buffer.concat([encoded, Buffer.from([(field << 3) | 2, bytes.length, ...bytes])]);
}

const identity = (b: Buffer) => b;

/** One call with raw bytes; resolves with its final status code, however it ends. */
function call(client: GrpcClient, streaming: boolean, bytes: Buffer): Promise<{ code: status; details: string }> {
  const metadata = new Metadata();
  metadata.set('x-api-key', KEY);
  const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
  const method = `/switchyard.router.v1.RouterService/${streaming ? 'StreamComplete' : 'Complete'}`;
  return new Promise((resolve) => {
    if (!streaming) {
      client.makeUnaryRequest(method, identity, identity, bytes, metadata, { deadline }, (err) =>
        resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '' }),
      );
      return;
    }
    const stream = client.makeServerStreamRequest(method, identity, identity, bytes, metadata, { deadline });
    stream.on('data', () => {});
    stream.on('error', () => {});
    stream.on('status', (s: { code: status; details: string }) => resolve({ code: s.code, details: s.details }));
  });
}

/** What a request can honestly end with; DEADLINE_EXCEEDED, UNAVAILABLE, INTERNAL or UNKNOWN would be the router failing it. */
const DEFINITE = new Set([status.OK, status.INVALID_ARGUMENT, status.RESOURCE_EXHAUSTED, status.FAILED_PRECONDITION]);

describe('fuzzed public requests (issue 10.2)', () => {
  let stack: Stack;
  let router: SpawnedProcess;
  let client: GrpcClient;

  beforeAll(async () => {
    stack = await startStack(gatewayYaml, scenario);
    router = await spawnProcess({
      entry: join(__dirname, '../src/main.ts'),
      env: { ...stack.routerEnv, GRPC_PORT: '0', LOG_LEVEL: 'warn', OTEL_SDK_DISABLED: 'true' },
    });
    client = new GrpcClient(`127.0.0.1:${router.port}`, credentials.createInsecure());
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await router?.stop();
    await stack?.stop();
  }, 60_000);

  it(`every call ends with a definite status before its deadline, and the router neither crashes nor logs an unhandled error (seed ${SEED}, ${RUNS} runs)`, async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (b, streaming) => {
        const started = performance.now();
        const { code, details } = await call(client, streaming, encode(b, streaming));
        const key = status[code] ?? String(code);
        seen.set(key, (seen.get(key) ?? 0) + 1);
        if (!DEFINITE.has(code)) throw new Error(`ended ${key}: ${details}`);
        if (performance.now() - started >= CALL_DEADLINE_MS) throw new Error(`took past its deadline (${key})`);
        if (router.lines.some(isAlarm)) throw new Error(`router logged:\n${router.lines.filter(isAlarm).join('\n')}`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: reportShortly },
    );
    if (process.env.FUZZ_VERBOSE) console.log(Object.fromEntries(seen));
    // The router is still there, serving.
    expect(await Promise.race([router.exited.then(() => 'exited'), Promise.resolve('alive')])).toBe('alive');
    // The fuzz reached both the handlers' refusals and real answers.
    expect(seen.get('OK') ?? 0).toBeGreaterThan(0);
    expect(seen.get('INVALID_ARGUMENT') ?? 0).toBeGreaterThan(0);
  }, 120_000);
});

/** Cuts long strings and arrays so that a counterexample of megabytes stays readable. */
function shortly(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string' && v.length > 60) return `${v.slice(0, 20)}…(${v.length} chars)`;
    if (Array.isArray(v) && v.length > 8) return [...v.slice(0, 4), `…(${v.length} items)`];
    if (v instanceof Uint8Array) return `bytes[${Buffer.from(v).toString('hex')}]`;
    return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
  });
}

function reportShortly(run: fc.RunDetails<[Body, boolean]>): void {
  if (!run.failed) return;
  const replay = `FUZZ_SEED=${run.seed} (path ${run.counterexamplePath ?? '?'})`;
  throw new Error(`fuzz failed after ${run.numRuns} run(s), ${replay}\ncounterexample: ${shortly(run.counterexample)}\ncause: ${String(run.errorInstance)}`);
}

/** A line that means the process mishandled something: pino error/fatal, or Node's own crash reports. */
function isAlarm(line: string): boolean {
  if (/unhandled ?rejection|uncaught ?exception|UnhandledPromiseRejection/i.test(line)) return true;
  try {
    const parsed = JSON.parse(line) as { level?: unknown };
    return typeof parsed.level === 'number' && parsed.level >= 50;
  } catch {
    return false;
  }
}
