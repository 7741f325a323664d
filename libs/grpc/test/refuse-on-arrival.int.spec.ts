import { BudgetService } from '@switchyard/contracts';
import { AppError, createClient, parseGrpcError, status, type ImplementationOf } from '../src';
import { createServerPool } from './harness';

/**
 * GrpcServerOptions.refuseOnArrival over a real socket and the grpc-js
 * client: a refused stream is answered with the whole status (code, message,
 * RetryInfo, ErrorInfo) without its handler running, other methods and later
 * calls on the same connection are served, and a refused request's body,
 * however large, does not stall the connection.
 */
const pool = createServerPool();
afterEach(() => pool.stopAll());

const COMMIT = `/${BudgetService.typeName}/Commit`;
// Non-ASCII and a percent sign: the message must arrive as grpc-js would have sent it.
const refusal = new AppError(status.RESOURCE_EXHAUSTED, 'plein à 100 %: retry shortly', {
  retryDelayMs: 250,
  errorInfo: { reason: 'AT_CAPACITY', domain: 'test', metadata: { max: '3' } },
});

async function startRefusing() {
  const calls = { commit: 0, reserve: 0 };
  const refusing = { on: true };
  const implementation: ImplementationOf<typeof BudgetService> = {
    reserve: async () => {
      calls.reserve += 1;
      return { granted: true };
    },
    commit: async () => {
      calls.commit += 1;
      return { found: true };
    },
    release: async () => ({ released: true }),
    getBudget: async () => ({ caps: [] }),
  };
  const checked: string[] = [];
  const { address } = await pool.start({
    services: [{ service: BudgetService, implementation }],
    refuseOnArrival: (path) => {
      checked.push(path);
      return refusing.on && path === COMMIT ? refusal : undefined;
    },
  });
  return { client: createClient(BudgetService, address), calls, refusing, checked };
}

describe('refusing a stream as it arrives (refuseOnArrival)', () => {
  it('answers the refused method with the full status and never runs its handler; other methods are served', async () => {
    const { client, calls, checked } = await startRefusing();
    try {
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => client.commit({ reservationId: 'r' }).then(() => undefined, (e: unknown) => parseGrpcError(e))));
      for (const o of outcomes) {
        expect(o).toEqual({
          code: status.RESOURCE_EXHAUSTED,
          message: 'plein à 100 %: retry shortly',
          details: { retryDelayMs: 250, errorInfo: { reason: 'AT_CAPACITY', domain: 'test', metadata: { max: '3' } } },
        });
      }
      expect(calls.commit).toBe(0);
      await expect(client.reserve({})).resolves.toMatchObject({ granted: true });
      expect(calls.reserve).toBe(1);
      expect(checked.filter((p) => p === COMMIT)).toHaveLength(20);
    } finally {
      client.close();
    }
  });

  it('serves the method again on the same connection once the check lets it through', async () => {
    const { client, calls, refusing } = await startRefusing();
    try {
      await expect(client.commit({ reservationId: 'r' })).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
      refusing.on = false;
      await expect(client.commit({ reservationId: 'r' })).resolves.toMatchObject({ found: true });
      expect(calls.commit).toBe(1);
    } finally {
      client.close();
    }
  });

  it('drops the bodies of refused requests, so they do not exhaust the connection\'s flow-control window', async () => {
    const { client, refusing } = await startRefusing();
    try {
      // 40 × 256 KiB: far past HTTP/2's 64 KiB initial window, had the bytes been left unread.
      const big = 'x'.repeat(256 * 1024);
      for (let i = 0; i < 40; i++) {
        await expect(client.commit({ reservationId: big }, { deadlineMs: 5_000 })).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
      }
      refusing.on = false;
      await expect(client.commit({ reservationId: big }, { deadlineMs: 5_000 })).resolves.toMatchObject({ found: true });
    } finally {
      client.close();
    }
  });
});
