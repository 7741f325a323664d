import { BudgetService, Health, HealthCheckResponse_ServingStatus, CapScope, BudgetPeriod, RouterService, FinishReason, ErrorClass, type StreamCompleteResponse } from '@switchyard/contracts';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { sleep } from '@switchyard/util';
import {
  AppError,
  createClient,
  createGrpcServer,
  INTERNAL_ERROR_MESSAGE,
  INTERNAL_TOKEN_METADATA,
  invalidArgument,
  parseGrpcError,
  resourceExhausted,
  serviceRegistration,
  status,
  unavailable,
  type CallContext,
  type ImplementationOf,
} from '../src';
import { createRecordingLogger, createServerPool, deferred, within } from './harness';

const pool = createServerPool();
afterEach(() => pool.stopAll());

function budgetImpl(overrides: Partial<ImplementationOf<typeof BudgetService>> = {}): ImplementationOf<typeof BudgetService> {
  return {
    reserve: async (req, ctx) => ({
      granted: true,
      reservationId: `res-${req.tenant}-${req.amountMicros}-${ctx.metadata.get('authorization')[0] ?? 'anon'}`,
      spentMicros: req.amountMicros * 2n,
    }),
    commit: async () => ({ found: true, returnedMicros: -5n }),
    release: async () => ({ released: true }),
    getBudget: async (req) => ({
      caps: [{ cap: { scope: CapScope.TENANT, subject: req.tenant, period: BudgetPeriod.DAY, hard: true }, limitMicros: 1_000_000n }],
    }),
    ...overrides,
  };
}

describe('grpc adapter: unary', () => {
  it('round-trips a request and response, with metadata and int64 money intact', async () => {
    const { address } = await pool.start({ services: [{ service: BudgetService, implementation: budgetImpl() }] });
    const client = createClient(BudgetService, address, { defaultDeadlineMs: 5000 });
    try {
      const res = await client.reserve({ tenant: 'acme', amountMicros: 9_007_199_254_740_993n }, { metadata: { authorization: 'Bearer k1' } });
      expect(res.granted).toBe(true);
      expect(res.reservationId).toBe('res-acme-9007199254740993-Bearer k1');
      expect(res.spentMicros).toBe(18_014_398_509_481_986n);
      const budget = await client.getBudget({ tenant: 'acme' });
      expect(budget.caps[0].cap?.subject).toBe('acme');
      expect(budget.caps[0].cap?.period).toBe(BudgetPeriod.DAY);
      expect((await client.commit({ reservationId: 'x', actualMicros: 1n })).returnedMicros).toBe(-5n);
    } finally {
      client.close();
    }
  });

  it('gives the handler the peer, path and deadline of the call', async () => {
    const seen = deferred<CallContext>();
    const { address } = await pool.start({
      services: [{ service: BudgetService, implementation: budgetImpl({ release: async (_req: unknown, ctx: CallContext) => (seen.resolve(ctx), { released: true }) }) }],
    });
    const client = createClient(BudgetService, address);
    try {
      const before = Date.now();
      await client.release({ reservationId: 'r1' }, { deadlineMs: 3000 });
      const ctx = await seen.promise;
      expect(ctx.path).toBe('/switchyard.budget.v1.BudgetService/Release');
      expect(ctx.peer).toMatch(/127\.0\.0\.1:\d+/);
      expect(ctx.deadline!.getTime()).toBeGreaterThanOrEqual(before + 2000);
      expect(ctx.deadline!.getTime()).toBeLessThanOrEqual(Date.now() + 3000);
    } finally {
      client.close();
    }
  });

  it('fails with DEADLINE_EXCEEDED and aborts the handler signal when the deadline passes', async () => {
    const aborted = deferred<unknown>();
    const { address } = await pool.start({
      services: [
        {
          service: BudgetService,
          implementation: budgetImpl({
            commit: async (_req: unknown, ctx: CallContext) => {
              await sleep(10_000, ctx.signal).catch((reason: unknown) => aborted.resolve(reason));
              return { found: false };
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address);
    try {
      const started = Date.now();
      const err = await client.commit({ reservationId: 'slow' }, { deadlineMs: 150 }).catch((e: unknown) => e);
      expect(parseGrpcError(err).code).toBe(status.DEADLINE_EXCEEDED);
      expect(Date.now() - started).toBeLessThan(2000);
      await within(aborted.promise, 2000, 'handler signal to abort');
    } finally {
      client.close();
    }
  });

  it('uses the client default deadline when the call sets none', async () => {
    const { address } = await pool.start({
      services: [{ service: BudgetService, implementation: budgetImpl({ release: async (_r: unknown, ctx: CallContext) => (await sleep(5000, ctx.signal), { released: true }) }) }],
    });
    const client = createClient(BudgetService, address, { defaultDeadlineMs: 100 });
    try {
      const err = await client.release({ reservationId: 'r' }).catch((e: unknown) => e);
      expect(parseGrpcError(err).code).toBe(status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
    }
  });

  it('cancels a unary call when the caller aborts its signal', async () => {
    const serverStarted = deferred();
    const serverAborted = deferred();
    const { address } = await pool.start({
      services: [
        {
          service: BudgetService,
          implementation: budgetImpl({
            release: async (_r: unknown, ctx: CallContext) => {
              serverStarted.resolve();
              await sleep(10_000, ctx.signal).catch(() => serverAborted.resolve());
              return { released: true };
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address);
    try {
      const controller = new AbortController();
      const pending = client.release({ reservationId: 'r' }, { signal: controller.signal }).catch((e: unknown) => e);
      await within(serverStarted.promise, 2000, 'handler to start');
      controller.abort();
      expect(parseGrpcError(await pending).code).toBe(status.CANCELLED);
      await within(serverAborted.promise, 2000, 'server to see the cancel');
    } finally {
      client.close();
    }
  });
});

describe('grpc adapter: errors', () => {
  it('sends AppError code, message and google.rpc details the client can decode', async () => {
    const { address } = await pool.start({
      services: [
        {
          service: BudgetService,
          implementation: budgetImpl({
            reserve: async () => {
              throw resourceExhausted({
                message: 'daily budget of tenant acme exhausted',
                retryAfterMs: 1500,
                violations: [{ subject: 'tenant:acme/day', description: 'spent 10000000 of 10000000 micro-USD' }],
                errorInfo: { reason: 'BUDGET_EXCEEDED', domain: 'switchyard.budget', metadata: { cap: 'day' } },
              });
            },
            commit: async () => {
              throw invalidArgument('actual_micros', 'must be >= 0, got -3');
            },
            release: async () => {
              throw unavailable('redis unreachable', 250);
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address);
    try {
      const exhausted = parseGrpcError(await client.reserve({ tenant: 'acme' }).catch((e: unknown) => e));
      expect(exhausted).toEqual({
        code: status.RESOURCE_EXHAUSTED,
        message: 'daily budget of tenant acme exhausted',
        details: {
          quotaFailure: [{ subject: 'tenant:acme/day', description: 'spent 10000000 of 10000000 micro-USD' }],
          retryDelayMs: 1500,
          errorInfo: { reason: 'BUDGET_EXCEEDED', domain: 'switchyard.budget', metadata: { cap: 'day' } },
        },
      });
      const invalid = parseGrpcError(await client.commit({ reservationId: 'r' }).catch((e: unknown) => e));
      expect(invalid.code).toBe(status.INVALID_ARGUMENT);
      expect(invalid.message).toBe('actual_micros: must be >= 0, got -3');
      expect(invalid.details.badRequest).toEqual([{ field: 'actual_micros', description: 'must be >= 0, got -3' }]);
      const down = parseGrpcError(await client.release({ reservationId: 'r' }).catch((e: unknown) => e));
      expect(down).toEqual({ code: status.UNAVAILABLE, message: 'redis unreachable', details: { retryDelayMs: 250 } });
    } finally {
      client.close();
    }
  });

  it('answers an unexpected error with INTERNAL and a generic message, logging the real one', async () => {
    const { logger, errors } = createRecordingLogger();
    const { address } = await pool.start({
      logger,
      services: [
        {
          service: BudgetService,
          implementation: budgetImpl({
            reserve: async () => {
              throw new Error('connection string redis://:hunter2@10.0.0.1 refused');
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address);
    try {
      const err = parseGrpcError(await client.reserve({ tenant: 'acme' }).catch((e: unknown) => e));
      expect(err.code).toBe(status.INTERNAL);
      expect(err.message).toBe(INTERNAL_ERROR_MESSAGE);
      expect(JSON.stringify(err)).not.toContain('hunter2');
      expect(errors).toHaveLength(1);
      expect(String((errors[0].obj as { err: Error }).err.message)).toContain('hunter2');
      expect((errors[0].obj as { path: string }).path).toBe('/switchyard.budget.v1.BudgetService/Reserve');
    } finally {
      client.close();
    }
  });

  it('maps a plain non-gRPC error on the client side to UNKNOWN', () => {
    expect(parseGrpcError(new TypeError('boom'))).toEqual({ code: status.UNKNOWN, message: 'boom', details: {} });
    expect(parseGrpcError(new AppError(status.NOT_FOUND, 'x'))).toMatchObject({ code: status.NOT_FOUND });
  });

  it('refuses to start when a service method has no handler, naming it', async () => {
    const { getBudget: _omit, ...partial } = budgetImpl();
    await expect(pool.start({ services: [{ service: BudgetService, implementation: partial as ImplementationOf<typeof BudgetService> }] })).rejects.toThrow(
      'services[switchyard.budget.v1.BudgetService].implementation.getBudget: handler missing',
    );
  });
});

describe('grpc adapter: server streaming', () => {
  const final = { finishReason: FinishReason.STOP, costMicros: 42n, usage: { inputTokens: 3, outputTokens: 2 } };

  async function collect(stream: AsyncIterable<StreamCompleteResponse>) {
    const out: StreamCompleteResponse['event'][] = [];
    for await (const m of stream) out.push(m.event);
    return out;
  }

  it('streams messages from an async generator, in order, then ends with OK', async () => {
    const { address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({ content: 'unused' }),
            async *streamComplete(req) {
              for (const word of req.messages[0].content.split(' ')) yield { event: { case: 'delta', value: { text: word } } };
              yield { event: { case: 'final', value: final } };
            },
          },
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      const events = await collect(client.streamComplete({ route: 'chat', messages: [{ content: 'a b c' }] }));
      expect(events.map((e) => e.case)).toEqual(['delta', 'delta', 'delta', 'final']);
      expect(events.slice(0, 3).map((e) => (e.case === 'delta' ? e.value.text : ''))).toEqual(['a', 'b', 'c']);
      const last = events[3];
      expect(last.case === 'final' && last.value.costMicros).toBe(42n);
    } finally {
      client.close();
    }
  });

  it('streams through the send callback form and honours backpressure for large streams', async () => {
    const big = 'x'.repeat(64 * 1024);
    const { address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({}),
            streamComplete: async (_req, _ctx, send) => {
              for (let i = 0; i < 200; i++) await send({ event: { case: 'delta', value: { text: `${i}:${big}` } } });
              await send({ event: { case: 'final', value: final } });
            },
          },
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      const events = await collect(client.streamComplete({ route: 'chat' }));
      expect(events).toHaveLength(201);
      expect(events.slice(0, 200).every((e, i) => e.case === 'delta' && e.value.text.startsWith(`${i}:`))).toBe(true);
    } finally {
      client.close();
    }
  });

  it('ends the stream with the mapped status when the generator throws after some messages', async () => {
    const { address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({}),
            async *streamComplete() {
              yield { event: { case: 'delta', value: { text: 'partial' } } };
              throw unavailable('every candidate failed', 2000, {
                errorInfo: { reason: 'ALL_CANDIDATES_FAILED', domain: 'switchyard.router', metadata: { attempts: '3' } },
              });
            },
          },
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      const received: string[] = [];
      const err = await (async () => {
        for await (const m of client.streamComplete({ route: 'chat' })) if (m.event.case === 'delta') received.push(m.event.value.text);
      })().catch((e: unknown) => e);
      expect(received).toEqual(['partial']);
      const parsed = parseGrpcError(err);
      expect(parsed.code).toBe(status.UNAVAILABLE);
      expect(parsed.details.retryDelayMs).toBe(2000);
      expect(parsed.details.errorInfo?.metadata).toEqual({ attempts: '3' });
    } finally {
      client.close();
    }
  });

  it('stops the server generator when the client breaks out of the loop', async () => {
    const generatorStopped = deferred<{ sent: number; aborted: boolean }>();
    const { address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({}),
            async *streamComplete(_req, ctx) {
              let sent = 0;
              try {
                for (;;) {
                  yield { event: { case: 'delta', value: { text: String(sent++) } } };
                  await sleep(20, ctx.signal);
                }
              } finally {
                generatorStopped.resolve({ sent, aborted: ctx.signal.aborted });
              }
            },
          },
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      let read = 0;
      for await (const _m of client.streamComplete({ route: 'chat' })) if (++read === 3) break;
      const stopped = await within(generatorStopped.promise, 3000, 'server generator to stop');
      expect(stopped.aborted).toBe(true);
      expect(stopped.sent).toBeLessThan(20);
    } finally {
      client.close();
    }
  });

  it('stops the server generator when the client aborts its signal', async () => {
    const generatorStopped = deferred();
    const { address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({}),
            async *streamComplete(_req, ctx) {
              try {
                yield { event: { case: 'delta', value: { text: 'first' } } };
                await sleep(10_000, ctx.signal);
              } finally {
                generatorStopped.resolve();
              }
            },
          },
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      const controller = new AbortController();
      const err = await (async () => {
        for await (const _m of client.streamComplete({ route: 'chat' }, { signal: controller.signal })) controller.abort();
      })().catch((e: unknown) => e);
      expect(parseGrpcError(err).code).toBe(status.CANCELLED);
      await within(generatorStopped.promise, 3000, 'server generator to stop');
    } finally {
      client.close();
    }
  });

  it('carries an INCOMPLETE final with its error class', async () => {
    const { address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({}),
            async *streamComplete() {
              yield { event: { case: 'delta', value: { text: 'half' } } };
              yield { event: { case: 'final', value: { finishReason: FinishReason.INCOMPLETE, errorClass: ErrorClass.STREAM_INTERRUPTED } } };
            },
          },
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      const events = await collect(client.streamComplete({ route: 'chat' }));
      const last = events.at(-1)!;
      expect(last.case).toBe('final');
      expect(last.case === 'final' && [last.value.finishReason, last.value.errorClass]).toEqual([FinishReason.INCOMPLETE, ErrorClass.STREAM_INTERRUPTED]);
    } finally {
      client.close();
    }
  });
});

describe('grpc adapter: internal token', () => {
  const md = (token: string) => ({ [INTERNAL_TOKEN_METADATA]: token });
  const codeOf = (call: Promise<unknown>) => call.then(() => status.OK, (err: unknown) => parseGrpcError(err).code);

  it('refuses calls without the shared secret, accepts them with it, and leaves health open', async () => {
    const { address } = await pool.start({ services: [{ service: BudgetService, implementation: budgetImpl() }], auth: { internalToken: 's3cret' } });
    const client = createClient(BudgetService, address, { defaultDeadlineMs: 5000 });
    const health = createClient(Health, address, { defaultDeadlineMs: 5000 });
    try {
      for (const metadata of [{}, md('wrong'), md('s3cret '), md('s3cre')] as Record<string, string>[]) {
        const err = parseGrpcError(await client.getBudget({ tenant: 'acme' }, { metadata }).catch((e: unknown) => e));
        expect({ code: err.code, message: err.message }).toEqual({
          code: status.UNAUTHENTICATED,
          message: `metadata ${INTERNAL_TOKEN_METADATA}: missing or wrong internal token`,
        });
      }
      const ok = await client.getBudget({ tenant: 'acme' }, { metadata: md('s3cret') });
      expect(ok.caps).toHaveLength(1);
      expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      client.close();
      health.close();
    }
  });

  it('admits each token only to the methods its access level names: router, operator or either', async () => {
    const { address } = await pool.start({
      services: [serviceRegistration(BudgetService, budgetImpl(), { release: 'operator', getBudget: 'either' })],
      auth: { internalToken: 'router-secret', operatorToken: 'operator-secret' },
    });
    const client = createClient(BudgetService, address, { defaultDeadlineMs: 5000 });
    try {
      const router = md('router-secret');
      const operator = md('operator-secret');
      const denied = parseGrpcError(await client.release({ reservationId: 'r' }, { metadata: router }).catch((e: unknown) => e));
      expect({ code: denied.code, message: denied.message }).toEqual({
        code: status.PERMISSION_DENIED,
        message: "/switchyard.budget.v1.BudgetService/Release: an operator call; it needs the operator token (SWITCHYARD_OPERATOR_TOKEN), not the router's internal token",
      });
      expect(await codeOf(client.release({ reservationId: 'r' }, { metadata: operator }))).toBe(status.OK);
      expect(await codeOf(client.getBudget({ tenant: 'acme' }, { metadata: router }))).toBe(status.OK);
      expect(await codeOf(client.getBudget({ tenant: 'acme' }, { metadata: operator }))).toBe(status.OK);
      // Undeclared methods are the router's.
      expect(await codeOf(client.reserve({ tenant: 'acme', amountMicros: 1n }, { metadata: router }))).toBe(status.OK);
      expect(await codeOf(client.reserve({ tenant: 'acme', amountMicros: 1n }, { metadata: operator }))).toBe(status.PERMISSION_DENIED);
      expect(await codeOf(client.release({ reservationId: 'r' }, { metadata: {} }))).toBe(status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });

  it('refuses operator methods to everyone when only the internal token is configured, and says why', async () => {
    const { address } = await pool.start({
      services: [serviceRegistration(BudgetService, budgetImpl(), { release: 'operator' })],
      auth: { internalToken: 'router-secret' },
    });
    const client = createClient(BudgetService, address, { defaultDeadlineMs: 5000 });
    try {
      const err = parseGrpcError(await client.release({ reservationId: 'r' }, { metadata: md('router-secret') }).catch((e: unknown) => e));
      expect([err.code, err.message]).toEqual([
        status.PERMISSION_DENIED,
        '/switchyard.budget.v1.BudgetService/Release: an operator call, and this service has no operator token configured (set SWITCHYARD_OPERATOR_TOKEN to allow it)',
      ]);
    } finally {
      client.close();
    }
  });

  it('without tokens serves every method, operator ones included, on loopback (tests, the embedded demo)', async () => {
    const { address } = await pool.start({ services: [serviceRegistration(BudgetService, budgetImpl(), { release: 'operator' })], auth: {} });
    const client = createClient(BudgetService, address, { defaultDeadlineMs: 5000 });
    try {
      expect(await codeOf(client.release({ reservationId: 'r' }))).toBe(status.OK);
    } finally {
      client.close();
    }
  });

  it.each(['0.0.0.0', '::', '10.1.2.3'])('refuses to bind an internal service to %s without an internal token', async (host) => {
    await expect(createGrpcServer({ host, port: 0, services: [{ service: BudgetService, implementation: budgetImpl() }], auth: {} })).rejects.toThrow(
      `services switchyard.budget.v1.BudgetService: host ${host} is not a loopback address: refusing to serve an internal service there without an internal token`,
    );
  });

  it('binds 0.0.0.0 with an internal token, and without auth at all (a public edge such as the router)', async () => {
    for (const auth of [{ internalToken: 't' }, undefined]) {
      const server = await createGrpcServer({ host: '0.0.0.0', port: 0, services: [{ service: BudgetService, implementation: budgetImpl() }], ...(auth ? { auth } : {}) });
      await server.shutdown(100);
    }
  });

  it('rejects inconsistent settings at start-up', async () => {
    const services = [{ service: BudgetService, implementation: budgetImpl() }];
    await expect(pool.start({ services, auth: { operatorToken: 'o' } })).rejects.toThrow('auth.operatorToken: set without auth.internalToken');
    await expect(pool.start({ services, auth: { internalToken: 'same', operatorToken: 'same' } })).rejects.toThrow('auth.operatorToken: must differ from auth.internalToken');
    const unknown = { service: BudgetService, implementation: budgetImpl(), access: { nope: 'operator' } } as never;
    await expect(pool.start({ services: [unknown], auth: { internalToken: 't' } })).rejects.toThrow('services[switchyard.budget.v1.BudgetService].access.nope: no such method');
  });
});

describe('grpc adapter: connect()', () => {
  it('resolves once the channel is ready, before any call is made', async () => {
    const { address } = await pool.start({ services: [{ service: BudgetService, implementation: budgetImpl() }] });
    const client = createClient(BudgetService, address);
    try {
      await within(client.connect(5_000), 6_000, 'connect() to a listening server');
      // Already connected: a call now needs no name resolution or handshake (nothing to assert on timing; it must work).
      expect((await client.release({ reservationId: 'r1' })).released).toBe(true);
    } finally {
      client.close();
    }
  });

  it('rejects when nothing listens at the address within the deadline', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createNetServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo;
        probe.close(() => resolve(free));
      });
    });
    const client = createClient(BudgetService, `127.0.0.1:${port}`);
    try {
      await expect(within(client.connect(300), 5_000, 'connect() to a dead address to give up')).rejects.toThrow(/before the deadline/);
    } finally {
      client.close();
    }
  });
});
