import { Client as GrpcClient, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { BudgetService } from '@switchyard/contracts';
import { decodeStatusDetails, INTERNAL_TOKEN_METADATA, STATUS_DETAILS_KEY, status } from '../src';
import { createServerPool } from './harness';

const pool = createServerPool();
afterEach(() => pool.stopAll());

const identity = (b: Buffer) => b;

/** Sends raw bytes as a Reserve request, as a broken or hostile client could. */
function sendRaw(address: string, bytes: number[], metadata: Record<string, string> = {}): Promise<ServiceError | null> {
  const client = new GrpcClient(address, credentials.createInsecure());
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest('/switchyard.budget.v1.BudgetService/Reserve', identity, identity, Buffer.from(bytes), md, { deadline: Date.now() + 5000 }, (err) => {
      client.close();
      resolve(err);
    });
  });
}

describe('a request body that is not a valid message', () => {
  const calls: string[] = [];
  const implementation = {
    reserve: async () => (calls.push('reserve'), { granted: true, reservationId: 'r', spentMicros: 0n }),
    commit: async () => ({ found: true, returnedMicros: 0n }),
    release: async () => ({ released: true }),
    getBudget: async () => ({ caps: [] }),
  };

  it.each([
    ['invalid UTF-8 in a string field', [0x0a, 0x03, 0xed, 0xa0, 0x80]],
    ['a truncated field', [0x0a, 0x10, 0x61]],
    ['garbage', [0xff, 0xff, 0xff, 0xff]],
  ])('is INVALID_ARGUMENT naming the request type, never reaching the handler: %s', async (_name, bytes) => {
    const { address } = await pool.start({ services: [{ service: BudgetService, implementation }] });
    const err = await sendRaw(address, bytes);
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/^request: not a valid switchyard\.budget\.v1\.ReserveRequest message \(.+\)$/);
    const decoded = decodeStatusDetails(err!.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer);
    expect(decoded.details.badRequest?.[0]?.field).toBe('request');
    expect(calls).toEqual([]);
  });

  it('is still UNAUTHENTICATED first when the internal token is missing', async () => {
    const { address } = await pool.start({ services: [{ service: BudgetService, implementation }], auth: { internalToken: 's3cret' } });
    expect((await sendRaw(address, [0xff, 0xff]))?.code).toBe(status.UNAUTHENTICATED);
    expect((await sendRaw(address, [0xff, 0xff], { [INTERNAL_TOKEN_METADATA]: 's3cret' }))?.code).toBe(status.INVALID_ARGUMENT);
  });
});
