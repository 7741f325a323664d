import { createBackgroundTasks } from './background-tasks';

const quiet = { warn() {} };

describe('background tasks', () => {
  it('start two check phases after the turn that queued them: behind the answer resolved in that turn, and behind what that answer sends next turn', async () => {
    const tasks = createBackgroundTasks(quiet);
    const order: string[] = [];
    tasks.run('settle', {}, async () => void order.push('task started'));
    // Where gRPC sends the message of an answer resolved in this turn.
    setImmediate(() => order.push('next check phase'));
    // The handler's own continuation: resolves the answer, then gRPC's callback.
    await Promise.resolve().then(() => order.push('answer handed to gRPC'));
    for (let i = 0; i < 20; i++) await Promise.resolve();
    order.push('turn over');
    await tasks.drain();
    expect(order).toEqual(['answer handed to gRPC', 'turn over', 'next check phase', 'task started']);
  });

  it('drain() waits for a task that had not started yet, and pending() counts it', async () => {
    const tasks = createBackgroundTasks(quiet);
    let done = false;
    tasks.run('commit', {}, async () => {
      done = true;
    });
    expect(tasks.pending()).toBe(1);
    await tasks.drain();
    expect(done).toBe(true);
    expect(tasks.pending()).toBe(0);
  });

  it('logs a failed task with its fields and never rejects', async () => {
    const warnings: [object, string | undefined][] = [];
    const tasks = createBackgroundTasks({ warn: (obj, msg) => void warnings.push([obj, msg]) });
    tasks.run('budget commit', { request_id: 'r1' }, () => Promise.reject(new Error('peer down')));
    await tasks.drain();
    expect(warnings).toEqual([[{ request_id: 'r1', task: 'budget commit', err: { message: 'peer down' } }, 'budget commit failed']]);
  });
});
