import { BudgetService } from '@switchyard/contracts';
import { createClient, type ImplementationOf } from '../src';
import { createServerPool } from './harness';

const pool = createServerPool();
afterEach(() => pool.stopAll());

/** A budget replica that answers Release with whether it is replica "a" (true) or "b" (false). */
function replica(name: 'a' | 'b'): ImplementationOf<typeof BudgetService> {
  return {
    reserve: async () => ({ granted: true }),
    commit: async () => ({ found: true }),
    release: async () => ({ released: name === 'a' }),
    getBudget: async () => ({ caps: [] }),
  };
}

describe('client over several replicas', () => {
  it('spreads calls round-robin over a list of addresses, and keeps answering from the live one when the other stops', async () => {
    const a = await pool.start({ services: [{ service: BudgetService, implementation: replica('a') }] });
    const b = await pool.start({ services: [{ service: BudgetService, implementation: replica('b') }] });
    const client = createClient(BudgetService, `${a.address},localhost:${b.handle.port}`, { defaultDeadlineMs: 2_000 });
    try {
      // The first calls may all land on whichever subchannel connected first; then both alternate.
      for (let i = 0; i < 10; i++) await client.release({ reservationId: 'x' });
      const answers = [];
      for (let i = 0; i < 20; i++) answers.push((await client.release({ reservationId: 'x' })).released);
      expect(answers.filter((x) => x).length).toBe(10);

      await a.handle.shutdown(1_000);
      const after = [];
      for (let i = 0; i < 20; i++) after.push((await client.release({ reservationId: 'x' })).released);
      expect(after).toEqual(Array(20).fill(false));
    } finally {
      client.close();
    }
  });

  it('balances one DNS name over every address it resolves to', async () => {
    // localhost resolves to 127.0.0.1 (and maybe ::1); the server listens on 127.0.0.1 only: calls still succeed.
    const a = await pool.start({ services: [{ service: BudgetService, implementation: replica('a') }] });
    const client = createClient(BudgetService, `localhost:${a.handle.port}`, { defaultDeadlineMs: 2_000 });
    try {
      for (let i = 0; i < 5; i++) expect((await client.release({ reservationId: 'x' })).released).toBe(true);
    } finally {
      client.close();
    }
  });
});
