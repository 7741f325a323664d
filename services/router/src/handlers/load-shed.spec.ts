import { isAppError, status } from '@switchyard/grpc';
import { createInFlightGate, SHED_RETRY_AFTER_MS, shedExcess } from './load-shed';

/** A handler whose calls stay in flight until the test settles them. */
function heldHandler() {
  const pending: { resolve(v: string): void; reject(e: Error): void }[] = [];
  let calls = 0;
  const handler = (arg: string) => {
    calls += 1;
    return new Promise<string>((resolve, reject) => pending.push({ resolve: () => resolve(arg), reject }));
  };
  return { handler, pending, calls: () => calls };
}

describe('load shedding', () => {
  it('refuses the call past the bound without running the handler, with RESOURCE_EXHAUSTED and a retry-after', async () => {
    const held = heldHandler();
    const gate = createInFlightGate(2);
    const shed = shedExcess(gate, 2, held.handler);
    const a = shed('a');
    const b = shed('b');
    const refused = await shed('c').catch((e: unknown) => e);
    expect(held.calls()).toBe(2);
    expect(isAppError(refused)).toBe(true);
    expect(refused).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: { retryDelayMs: SHED_RETRY_AFTER_MS, errorInfo: { reason: 'ROUTER_OVERLOADED' } } });
    held.pending[0]!.resolve('');
    held.pending[1]!.reject(new Error('upstream failed'));
    await expect(a).resolves.toBe('a');
    await expect(b).rejects.toThrow('upstream failed');
  });

  it('gives the place back when the handler settles either way, or throws before returning a promise', async () => {
    const gate = createInFlightGate(1);
    const held = heldHandler();
    const shed = shedExcess(gate, 1, held.handler);
    const first = shed('1');
    expect(gate.inFlight).toBe(1);
    held.pending[0]!.reject(new Error('x'));
    await first.catch(() => undefined);
    expect(gate.inFlight).toBe(0);
    const throwing = shedExcess(gate, 1, (): Promise<void> => {
      throw new Error('sync');
    });
    await expect(throwing()).rejects.toThrow('sync');
    expect(gate.inFlight).toBe(0);
    const second = shed('2');
    held.pending[1]!.resolve('');
    await expect(second).resolves.toBe('2');
  });

  it('one gate bounds every handler wrapped with it (Complete and StreamComplete together)', async () => {
    const gate = createInFlightGate(1);
    const held = heldHandler();
    const complete = shedExcess(gate, 1, held.handler);
    const stream = shedExcess(gate, 1, held.handler);
    const running = complete('c');
    await expect(stream('s')).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    held.pending[0]!.resolve('');
    await running;
    const s = stream('s');
    held.pending[1]!.resolve('');
    await expect(s).resolves.toBe('s');
  });

  it('0 means no bound', async () => {
    const held = heldHandler();
    const shed = shedExcess(createInFlightGate(0), 0, held.handler);
    const all = Array.from({ length: 100 }, (_, i) => shed(String(i)));
    expect(held.calls()).toBe(100);
    held.pending.forEach((p) => p.resolve(''));
    await Promise.all(all);
  });

  it('rejects a bound that is not a whole number ≥ 0', () => {
    expect(() => createInFlightGate(-1)).toThrow('whole number');
    expect(() => createInFlightGate(1.5)).toThrow('whole number');
  });
});
