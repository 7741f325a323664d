import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { BudgetService, Health, HealthCheckResponse_ServingStatus as ServingStatus, RouterService } from '@switchyard/contracts';
import { sleep } from '@switchyard/util';
import { createClient, parseGrpcError, status, type CallContext, type ImplementationOf } from '../src';
import { createRecordingLogger, createServerPool, deferred, within } from './harness';

const pool = createServerPool();
afterEach(() => pool.stopAll());

function budget(overrides: Partial<ImplementationOf<typeof BudgetService>> = {}): ImplementationOf<typeof BudgetService> {
  return {
    reserve: async () => ({ granted: true }),
    commit: async () => ({ found: true }),
    release: async () => ({ released: true }),
    getBudget: async () => ({}),
    ...overrides,
  };
}

describe('health', () => {
  it('reports SERVING for the server and each service, NOT_FOUND for unknown services', async () => {
    const { handle, address } = await pool.start({ services: [{ service: BudgetService, implementation: budget() }] });
    const health = createClient(Health, address, { defaultDeadlineMs: 2000 });
    try {
      expect((await health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
      expect((await health.check({ service: 'switchyard.budget.v1.BudgetService' })).status).toBe(ServingStatus.SERVING);
      const unknown = parseGrpcError(await health.check({ service: 'nope.v1.Nope' }).catch((e: unknown) => e));
      expect(unknown.code).toBe(status.NOT_FOUND);

      handle.setServing(false, 'switchyard.budget.v1.BudgetService');
      expect((await health.check({ service: 'switchyard.budget.v1.BudgetService' })).status).toBe(ServingStatus.NOT_SERVING);
      expect((await health.check({ service: '' })).status).toBe(ServingStatus.SERVING);
      handle.setServing(false);
      expect((await health.check({ service: '' })).status).toBe(ServingStatus.NOT_SERVING);
      handle.setServing(true);
      expect((await health.check({ service: 'switchyard.budget.v1.BudgetService' })).status).toBe(ServingStatus.SERVING);
    } finally {
      health.close();
    }
  });

  it('Watch streams every transition, then NOT_SERVING on shutdown, then ends', async () => {
    const { handle, address } = await pool.start({ services: [{ service: BudgetService, implementation: budget() }] });
    const health = createClient(Health, address);
    try {
      const updates = health.watch({ service: 'switchyard.budget.v1.BudgetService' })[Symbol.asyncIterator]();
      const next = async () => {
        const result = await within(updates.next(), 2000, 'next Watch message');
        return result.done ? 'ended' : result.value.status;
      };
      expect(await next()).toBe(ServingStatus.SERVING);
      handle.setServing(false);
      expect(await next()).toBe(ServingStatus.NOT_SERVING);
      handle.setServing(true);
      expect(await next()).toBe(ServingStatus.SERVING);
      const stopping = handle.shutdown(2000);
      expect(await next()).toBe(ServingStatus.NOT_SERVING);
      expect(await next()).toBe('ended');
      // The Watch stream ended by itself, so graceful shutdown did not need the force timer.
      await within(stopping, 1000, 'graceful shutdown');
    } finally {
      health.close();
    }
  });

  it('Watch on an unknown service answers SERVICE_UNKNOWN and keeps the stream open', async () => {
    const { address } = await pool.start({ services: [{ service: BudgetService, implementation: budget() }] });
    const health = createClient(Health, address);
    try {
      for await (const update of health.watch({ service: 'nope.v1.Nope' })) {
        expect(update.status).toBe(ServingStatus.SERVICE_UNKNOWN);
        break;
      }
    } finally {
      health.close();
    }
  });
});

describe('shutdown', () => {
  it('lets an in-flight call finish and refuses new ones', async () => {
    const started = deferred();
    const { handle, address } = await pool.start({
      services: [
        {
          service: BudgetService,
          implementation: budget({
            release: async () => {
              started.resolve();
              await sleep(200);
              return { released: true };
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address, { defaultDeadlineMs: 2000 });
    try {
      const inFlight = client.release({ reservationId: 'r' });
      await started.promise;
      const stopped = handle.shutdown(5000);
      expect((await inFlight).released).toBe(true);
      await stopped;
      const after = parseGrpcError(await client.release({ reservationId: 'r2' }).catch((e: unknown) => e));
      expect(after.code).toBe(status.UNAVAILABLE);
    } finally {
      client.close();
    }
  });

  it('force-closes calls still running after the grace period, aborting their signal', async () => {
    const aborted = deferred();
    const { logger } = createRecordingLogger();
    const { handle, address } = await pool.start({
      logger,
      services: [
        {
          service: BudgetService,
          implementation: budget({
            release: async (_r, ctx: CallContext) => {
              await sleep(30_000, ctx.signal).catch(() => aborted.resolve());
              return { released: true };
            },
          }),
        },
      ],
    });
    const client = createClient(BudgetService, address);
    try {
      const inFlight = client.release({ reservationId: 'r' }).catch((e: unknown) => e);
      await sleep(50);
      const t0 = Date.now();
      await handle.shutdown(200);
      expect(Date.now() - t0).toBeLessThan(2000);
      // Answered UNAVAILABLE (call again), not CANCELLED, which a caller takes for its own cancellation.
      expect(parseGrpcError(await inFlight)).toMatchObject({ code: status.UNAVAILABLE, message: expect.stringMatching(/server shutting down.*200 ms grace/), details: { retryDelayMs: 0 } });
      await within(aborted.promise, 2000, 'handler signal to abort');
    } finally {
      client.close();
    }
  });

  it('a stream still running after the grace period ends UNAVAILABLE after what it sent', async () => {
    const aborted = deferred();
    const { handle, address } = await pool.start({
      services: [
        {
          service: RouterService,
          implementation: {
            complete: async () => ({}),
            streamComplete: async (_r: unknown, ctx: CallContext, send: (m: object) => Promise<void>) => {
              await send({ event: { case: 'delta', value: { text: 'partial' } } });
              await sleep(30_000, ctx.signal).catch(() => aborted.resolve());
            },
          } as unknown as ImplementationOf<typeof RouterService>,
        },
      ],
    });
    const client = createClient(RouterService, address);
    try {
      const received: string[] = [];
      const reading = (async () => {
        for await (const m of client.streamComplete({ route: 'r' })) if (m.event.case === 'delta') received.push(m.event.value.text);
      })().catch((e: unknown) => e);
      await sleep(100);
      await handle.shutdown(200);
      expect(received).toEqual(['partial']);
      expect(parseGrpcError(await reading)).toMatchObject({ code: status.UNAVAILABLE, message: expect.stringMatching(/server shutting down/) });
      await within(aborted.promise, 2000, 'handler signal to abort');
    } finally {
      client.close();
    }
  });
});

/** Minimal reflection client built from the .proto that ships with @grpc/reflection. */
function reflectionClient(address: string, version: 'v1' | 'v1alpha') {
  const protoPath = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection', version, 'reflection.proto');
  const definition = protoLoader.loadSync(protoPath, { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
  };
  const client = new pkg.grpc.reflection[version].ServerReflection(address, grpc.credentials.createInsecure());
  const ask = (request: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const call = (client as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<object, Record<string, unknown>> }).serverReflectionInfo();
      call.on('data', (response) => {
        resolve(response);
        call.end();
      });
      call.on('error', reject);
      call.write(request);
    });
  return { ask, close: () => client.close() };
}

describe('reflection', () => {
  it.each(['v1', 'v1alpha'] as const)('lists the served services and resolves their files (%s)', async (version) => {
    const { address } = await pool.start({
      services: [
        { service: BudgetService, implementation: budget() },
        { service: RouterService, implementation: { complete: async () => ({}), async *streamComplete() {} } },
      ],
    });
    const reflection = reflectionClient(address, version);
    try {
      const listed = (await reflection.ask({ listServices: '*' })) as { listServicesResponse: { service: { name: string }[] } };
      expect(listed.listServicesResponse.service.map((s) => s.name).sort()).toEqual([
        'grpc.health.v1.Health',
        'switchyard.budget.v1.BudgetService',
        'switchyard.router.v1.RouterService',
      ]);
      const files = (await reflection.ask({ fileContainingSymbol: 'switchyard.router.v1.RouterService' })) as {
        fileDescriptorResponse: { fileDescriptorProto: Buffer[] };
      };
      const decoded = files.fileDescriptorResponse.fileDescriptorProto.map((b) => Buffer.from(b).toString('latin1'));
      // The router file and its import (shared types) both come back, so grpcurl can describe messages.
      expect(decoded.some((f) => f.includes('switchyard/router/v1/router.proto'))).toBe(true);
      expect(decoded.some((f) => f.includes('switchyard/events/v1/types.proto'))).toBe(true);
    } finally {
      reflection.close();
    }
  });
});
