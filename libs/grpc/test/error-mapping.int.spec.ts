import { BudgetService, RouterService } from '@switchyard/contracts';
import { FieldError, sleep } from '@switchyard/util';
import { createClient, parseGrpcError, status, type CallContext, type ImplementationOf } from '../src';
import { createRecordingLogger, createServerPool, deferred, within } from './harness';

const pool = createServerPool();
afterEach(() => pool.stopAll());

/** What a domain or library throws for bad input: a FieldError subclass that knows nothing of gRPC. */
class InvalidReservationError extends FieldError {
  override readonly name = 'InvalidReservationError';
}

function budgetImpl(overrides: Partial<ImplementationOf<typeof BudgetService>>): ImplementationOf<typeof BudgetService> {
  return {
    reserve: async () => ({ granted: true }),
    commit: async () => ({ found: true }),
    release: async () => ({ released: true }),
    getBudget: async () => ({ caps: [] }),
    ...overrides,
  };
}

describe('the one error mapping: field errors', () => {
  it('answers a FieldError subclass thrown by a handler with INVALID_ARGUMENT and BadRequest naming the field, logging nothing', async () => {
    const { logger, errors } = createRecordingLogger();
    const { address } = await pool.start({
      logger,
      services: [
        {
          service: BudgetService,
          implementation: budgetImpl({
            commit: async () => {
              throw new InvalidReservationError('reservation_id', 'is not a reservation id issued by the budget service');
            },
            release: async () => {
              throw FieldError.of([
                { field: 'deployment', problem: 'is required' },
                { field: 'ttl_ms', problem: 'must be at most 600000, got 900000' },
              ]);
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address);
    try {
      const one = parseGrpcError(await client.commit({ reservationId: 'nope' }).catch((e: unknown) => e));
      expect(one).toEqual({
        code: status.INVALID_ARGUMENT,
        message: 'reservation_id: is not a reservation id issued by the budget service',
        details: { badRequest: [{ field: 'reservation_id', description: 'is not a reservation id issued by the budget service' }] },
      });
      const two = parseGrpcError(await client.release({ reservationId: 'r' }).catch((e: unknown) => e));
      expect(two.code).toBe(status.INVALID_ARGUMENT);
      expect(two.message).toBe('deployment: is required; ttl_ms: must be at most 600000, got 900000');
      expect(two.details.badRequest).toEqual([
        { field: 'deployment', description: 'is required' },
        { field: 'ttl_ms', description: 'must be at most 600000, got 900000' },
      ]);
      expect(errors).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('ends a stream with INVALID_ARGUMENT when its handler throws a FieldError', async () => {
    const { address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({}),
            streamComplete: async () => {
              throw new FieldError('messages', 'must contain at least one message');
            },
          },
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      const err = await (async () => {
        for await (const _ of client.streamComplete({ route: 'chat' })) void _;
      })().catch((e: unknown) => e);
      const parsed = parseGrpcError(err);
      expect(parsed.code).toBe(status.INVALID_ARGUMENT);
      expect(parsed.details.badRequest).toEqual([{ field: 'messages', description: 'must contain at least one message' }]);
    } finally {
      client.close();
    }
  });
});

describe('the one error mapping: aborted calls', () => {
  it('answers CANCELLED, without an error log, whatever a handler throws after its caller cancelled', async () => {
    const { logger, errors } = createRecordingLogger();
    const started = deferred();
    const threw = deferred();
    const { address } = await pool.start({
      logger,
      services: [
        {
          service: BudgetService,
          implementation: budgetImpl({
            release: async (_req: unknown, ctx: CallContext) => {
              started.resolve();
              await sleep(10_000, ctx.signal).catch(() => undefined);
              threw.resolve();
              // Unexpected errors are logged and answered INTERNAL, unless the call was already aborted.
              throw new Error('store call failed because the signal aborted');
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address);
    try {
      const controller = new AbortController();
      const pending = client.release({ reservationId: 'r' }, { signal: controller.signal }).catch((e: unknown) => e);
      await within(started.promise, 2000, 'handler to start');
      controller.abort();
      expect(parseGrpcError(await pending).code).toBe(status.CANCELLED);
      await within(threw.promise, 2000, 'handler to throw after the cancel');
      // The rejection reaches the mapping within the same turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      expect(errors).toEqual([]);
    } finally {
      client.close();
    }
  });
});
