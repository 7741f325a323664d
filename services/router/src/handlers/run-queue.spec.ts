import { createServer, connect, type Socket } from 'node:net';
import { createRunQueue, worstOf } from './run-queue';

/** A clock the test moves: each turn's "work" advances it, as CPU work would advance a real one. */
function steppedClock() {
  let now = 1_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** Two ends of a loopback TCP connection. */
async function socketPair(): Promise<{ reader: Socket; writer: Socket; close(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const writer = connect(port, '127.0.0.1');
  await new Promise((r) => writer.once('connect', r));
  const reader = await accepted;
  return {
    reader,
    writer,
    close: async () => {
      writer.destroy();
      reader.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function until(cond: () => boolean) {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

describe('run queue (admitted calls worked in slices)', () => {
  it('gives turns in the order they were asked for', async () => {
    const q = createRunQueue(4);
    const order: number[] = [];
    await Promise.all([1, 2, 3, 4].map((i) => q.turn().then(() => order.push(i))));
    expect(order).toEqual([1, 2, 3, 4]);
    expect(q.waiting).toBe(0);
  });

  it('once a loop iteration has run a slice of turns, the rest wait for the next iteration, after its poll for I/O', async () => {
    const { reader, writer, close } = await socketPair();
    try {
      const clock = steppedClock();
      const q = createRunQueue(4, clock.now);
      const events: string[] = [];
      reader.on('data', () => events.push('I/O'));
      // Each turn's work takes 3 ms of the clock: two fit in a 4 ms slice (the second starts at 3 ms).
      // The first one's work writes to a socket: the bytes are readable at the loop's next poll.
      const turns = [1, 2, 3, 4, 5].map((i) =>
        q.turn().then(() => {
          events.push(`turn ${i}`);
          if (i === 1) writer.write('x');
          clock.advance(3);
        }),
      );
      await Promise.all(turns);
      await until(() => events.includes('I/O'));
      expect(events).toEqual(['turn 1', 'turn 2', 'I/O', 'turn 3', 'turn 4', 'turn 5']);
    } finally {
      await close();
    }
  });

  it('without a full slice, every waiting turn runs in the same iteration (no delay at light load)', async () => {
    const clock = steppedClock();
    const q = createRunQueue(4, clock.now);
    const events: string[] = [];
    // What the first turn's work defers with setImmediate runs in the next iteration's check phase:
    // after all three turns only if they all ran in this one.
    const turns = [1, 2, 3].map((i) =>
      q.turn().then(() => {
        events.push(`turn ${i}`);
        if (i === 1) setImmediate(() => events.push('next iteration'));
      }),
    );
    await Promise.all(turns);
    await until(() => events.includes('next iteration'));
    expect(events).toEqual(['turn 1', 'turn 2', 'turn 3', 'next iteration']);
  });

  it('reports the longest wait for a turn since it was last asked (the load shedder’s measure), then starts again, and each wait as it is given', async () => {
    const clock = steppedClock();
    const given: number[] = [];
    const q = createRunQueue(4, clock.now, (ms) => given.push(ms));
    expect(q.takeWorstMs()).toBe(0);
    const turns = [1, 2, 3, 4].map(() => q.turn().then(() => clock.advance(5)));
    expect(q.waiting).toBe(4);
    await Promise.all(turns);
    // Asked at 1000; served at 1000, 1005, 1010, 1015 (each turn's 5 ms overran the slice: one per iteration).
    expect(q.takeWorstMs()).toBe(15);
    expect(q.takeWorstMs()).toBe(0);
    // Each turn's own wait, for the metrics.
    expect(given).toEqual([0, 5, 10, 15]);
  });

  it('worstOf takes the larger of two measures (the loop delay and the queue wait), draining both', () => {
    const a = { n: 7, takeWorstMs() { const v = this.n; this.n = 0; return v; } };
    const b = { n: 12, takeWorstMs() { const v = this.n; this.n = 0; return v; } };
    const both = worstOf(a, b);
    expect(both.takeWorstMs()).toBe(12);
    expect(a.n).toBe(0);
    expect(both.takeWorstMs()).toBe(0);
  });

  it('rejects a slice that is not a positive number of ms', () => {
    expect(() => createRunQueue(0)).toThrow(/slice must be > 0/);
    expect(() => createRunQueue(Number.NaN)).toThrow(/slice must be > 0/);
  });
});
