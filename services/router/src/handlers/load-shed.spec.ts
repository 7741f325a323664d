import { RouterService } from '@switchyard/contracts';
import { isAppError, status } from '@switchyard/grpc';
import { ManualClock } from '@switchyard/util';
import { countArrivals, createAdaptiveGate, createInFlightGate, overloadedError, refuseArrivalsWhenFull, refuseWhenFull, SHED_RETRY_AFTER_MS, shedExcess, type LagSource } from './load-shed';

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
    let sheds = 0;
    const shed = shedExcess(gate, 2, held.handler, () => (sheds += 1));
    const a = shed('a');
    const b = shed('b');
    const refused = await shed('c').catch((e: unknown) => e);
    expect(held.calls()).toBe(2);
    expect(sheds).toBe(1);
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

/** A lag source the test sets: the worst delay the next window will report. */
function setLag(): LagSource & { next: number } {
  return {
    next: 0,
    takeWorstMs() {
      const w = this.next;
      this.next = 0;
      return w;
    },
  };
}

describe('the admission turn (shedExcess with a run queue)', () => {
  /** A queue whose turns the test gives out. */
  function manualQueue() {
    const turns: (() => void)[] = [];
    return {
      turns,
      queue: {
        get waiting() {
          return turns.length;
        },
        turn: () => new Promise<void>((resolve) => turns.push(resolve)),
      },
    };
  }

  it('starts an admitted call at once while nobody waits for a turn', () => {
    const held = heldHandler();
    const { queue, turns } = manualQueue();
    const shed = shedExcess(createInFlightGate(4), 4, held.handler, () => {}, queue);
    void shed('a');
    void shed('b');
    expect(held.calls()).toBe(2);
    expect(turns).toHaveLength(0);
  });

  it('makes an admitted call wait its turn behind calls already waiting, holding its place meanwhile', async () => {
    const held = heldHandler();
    const { queue, turns } = manualQueue();
    const gate = createInFlightGate(4);
    const shed = shedExcess(gate, 4, held.handler, () => {}, queue);
    const answerTurn = queue.turn(); // another call's answer waits for its turn
    const a = shed('a');
    expect(held.calls()).toBe(0);
    expect(gate.inFlight).toBe(1);
    expect(turns).toHaveLength(2);
    turns.shift()!(); // the answer's turn
    await answerTurn;
    turns.shift()!(); // the admitted call's
    await new Promise((r) => setImmediate(r));
    expect(held.calls()).toBe(1);
    held.pending[0]!.resolve('');
    await expect(a).resolves.toBe('a');
    expect(gate.inFlight).toBe(0);
  });
});

describe('adaptive in-flight bound (ROUTER_SHED_LAG_MS)', () => {
  const WINDOW = 100;
  function setup(min = 4, max = 64, target = 10) {
    const clock = new ManualClock(1_000);
    const lag = setLag();
    const gate = createAdaptiveGate({ min, max, targetLagMs: target, windowMs: WINDOW }, clock, lag);
    /** Takes places until refused; returns how many were taken. */
    const fill = () => {
      let n = 0;
      while (gate.tryEnter()) n += 1;
      return n;
    };
    const drain = () => {
      while (gate.inFlight > 0) gate.leave();
    };
    return { clock, lag, gate, fill, drain };
  }

  it('starts at the floor and grows by an eighth (at least one) per window that reached the bound without lag, up to the ceiling', () => {
    const { clock, gate, fill, drain } = setup(4, 20);
    expect(fill()).toBe(4);
    const seen = [gate.limit];
    for (let w = 0; w < 16; w++) {
      clock.advance(WINDOW);
      fill();
      seen.push(gate.limit);
      drain();
    }
    expect(seen).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 20, 20]);
  });

  it('does not grow while the bound is not reached (a quiet replica keeps its bound)', () => {
    const { clock, gate } = setup(4, 64);
    for (let w = 0; w < 10; w++) {
      clock.advance(WINDOW);
      expect(gate.tryEnter()).toBe(true);
      gate.leave();
    }
    expect(gate.limit).toBe(4);
  });

  it('a window whose event-loop delay exceeded the target shrinks the bound to ¾ of the calls in flight, never below the floor', () => {
    const { clock, lag, gate, fill, drain } = setup(4, 64);
    for (let w = 0; w < 40; w++) {
      clock.advance(WINDOW);
      fill();
      drain();
    }
    expect(gate.limit).toBe(64);
    // A window with at most 40 calls in flight and the loop 25 ms late: the next window judges it.
    clock.advance(WINDOW);
    for (let i = 0; i < 40; i++) gate.tryEnter();
    lag.next = 25;
    clock.advance(WINDOW);
    expect(gate.full()).toBe(true);
    expect(gate.limit).toBe(30);
    expect(gate.tryEnter()).toBe(false);
    drain();
    for (let w = 0; w < 10; w++) {
      fill();
      lag.next = 25;
      clock.advance(WINDOW);
      gate.full();
      drain();
    }
    expect(gate.limit).toBe(4);
  });

  it('a delay at or under the target is not lag', () => {
    const { clock, lag, gate, fill } = setup(4, 64, 10);
    fill();
    lag.next = 10;
    clock.advance(WINDOW);
    gate.full();
    expect(gate.limit).toBe(5);
  });

  it('a quiet gap (no call for two windows) is not judged: lag then was not caused by calls', () => {
    const { clock, lag, gate, fill } = setup(8, 64);
    fill();
    lag.next = 500;
    clock.advance(3 * WINDOW);
    expect(gate.full()).toBe(true);
    expect(gate.limit).toBe(8);
  });

  it('refuses past the adaptive bound through shedExcess, naming the bound in force', async () => {
    const { gate } = setup(2, 64);
    const held = heldHandler();
    const shed = shedExcess(gate, 64, held.handler);
    const running = [shed('a'), shed('b')];
    await expect(shed('c')).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: { errorInfo: { reason: 'ROUTER_OVERLOADED', metadata: { max_in_flight: '2' } } } });
    held.pending.forEach((p) => p.resolve(''));
    await Promise.all(running);
    expect(gate.inFlight).toBe(0);
  });

  it('rejects a floor above the ceiling', () => {
    expect(() => createAdaptiveGate({ min: 10, max: 5, targetLagMs: 10, windowMs: 100 }, new ManualClock(), setLag())).toThrow('floor');
  });
});

describe('refuseWhenFull (the HTTP edge, before reading a body)', () => {
  it('throws the overload refusal when full and takes no place either way', () => {
    const gate = createInFlightGate(1);
    let sheds = 0;
    const onShed = () => (sheds += 1);
    expect(() => refuseWhenFull(gate, onShed)).not.toThrow();
    expect(gate.inFlight).toBe(0);
    expect(sheds).toBe(0);
    gate.tryEnter();
    let thrown: unknown;
    try {
      refuseWhenFull(gate, onShed);
    } catch (err) {
      thrown = err;
    }
    expect(sheds).toBe(1);
    expect(thrown).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: { retryDelayMs: SHED_RETRY_AFTER_MS, errorInfo: { reason: 'ROUTER_OVERLOADED' } } });
    expect(gate.inFlight).toBe(1);
  });
});

/** countArrivals with its iteration boundary in the test's hands. */
function arrivalGate(max: number) {
  const clears: (() => void)[] = [];
  const gate = countArrivals(createInFlightGate(max), (clear) => clears.push(clear));
  return { gate, nextIteration: () => clears.splice(0).forEach((clear) => clear()) };
}

describe('refuseArrivalsWhenFull (the gRPC server, as a stream arrives)', () => {
  const complete = `/${RouterService.typeName}/Complete`;
  const stream = `/${RouterService.typeName}/StreamComplete`;

  it('refuses Complete and StreamComplete while the gate is full, counting each, and takes no place either way', () => {
    const { gate } = arrivalGate(1);
    let sheds = 0;
    const check = refuseArrivalsWhenFull(gate, () => (sheds += 1));
    expect(check(complete)).toBeUndefined();
    expect(gate.inFlight).toBe(0);
    gate.tryEnter();
    expect(check(complete)).toBe(overloadedError(1));
    expect(check(stream)).toMatchObject({ code: status.RESOURCE_EXHAUSTED, details: { retryDelayMs: SHED_RETRY_AFTER_MS, errorInfo: { reason: 'ROUTER_OVERLOADED' } } });
    expect(sheds).toBe(2);
    expect(gate.inFlight).toBe(1);
  });

  it('lets every other method through, full or not (health checks, reflection)', () => {
    const { gate } = arrivalGate(1);
    gate.tryEnter();
    const check = refuseArrivalsWhenFull(gate);
    for (const path of ['/grpc.health.v1.Health/Check', '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', '/other.Service/Complete']) expect(check(path)).toBeUndefined();
  });

  it('cuts a burst read in one go at the places left, before any of its handlers ran', () => {
    const { gate } = arrivalGate(4);
    gate.tryEnter();
    const check = refuseArrivalsWhenFull(gate);
    const burst = Array.from({ length: 6 }, () => check(complete));
    expect(burst.map((r) => (r ? 'refused' : 'let in'))).toEqual(['let in', 'let in', 'let in', 'refused', 'refused', 'refused']);
    expect(gate.inFlight).toBe(1);
  });
});

describe('countArrivals', () => {
  it('a handler taking its place takes its arrival off the count, so no call is counted twice', () => {
    const { gate } = arrivalGate(3);
    expect(gate.admitArrival()).toBe(true);
    expect(gate.admitArrival()).toBe(true);
    expect(gate.tryEnter()).toBe(true);
    expect(gate.tryEnter()).toBe(true);
    // Two in their handlers, none pending: one place left.
    expect(gate.admitArrival()).toBe(true);
    expect(gate.admitArrival()).toBe(false);
  });

  it('a handler refused a place takes its arrival off the count too', () => {
    const { gate } = arrivalGate(1);
    expect(gate.admitArrival()).toBe(true);
    expect(gate.admitArrival()).toBe(false);
    gate.tryEnter(); // the one let in takes the place
    expect(gate.admitArrival()).toBe(false); // full
    gate.leave();
    expect(gate.admitArrival()).toBe(true);
  });

  it('forgets its count at the next loop iteration: a call whose request never comes holds nothing', () => {
    const { gate, nextIteration } = arrivalGate(2);
    expect(gate.admitArrival()).toBe(true);
    expect(gate.admitArrival()).toBe(true);
    expect(gate.admitArrival()).toBe(false);
    nextIteration();
    expect(gate.admitArrival()).toBe(true);
    expect(gate.inFlight).toBe(0);
  });

  it('passes the gate through: places, bound and fullness are the gate\'s own', () => {
    const inner = createInFlightGate(2);
    const gate = countArrivals(inner, () => {});
    expect(gate.tryEnter()).toBe(true);
    expect(inner.inFlight).toBe(1);
    expect(gate.limit).toBe(2);
    gate.leave();
    expect(inner.inFlight).toBe(0);
    expect(gate.full()).toBe(false);
  });

  it('with no bound (0) every arrival is let in', () => {
    const { gate } = arrivalGate(0);
    for (let i = 0; i < 100; i++) expect(gate.admitArrival()).toBe(true);
  });
});

describe('overloadedError', () => {
  it('is one refusal per bound, reused for every call refused at that bound, each naming its own bound', () => {
    expect(overloadedError(3)).toBe(overloadedError(3));
    expect(overloadedError(3).details.errorInfo?.metadata).toEqual({ max_in_flight: '3' });
    expect(overloadedError(5).details.errorInfo?.metadata).toEqual({ max_in_flight: '5' });
    expect(overloadedError(5).message).toContain('5 calls in flight');
  });
});
