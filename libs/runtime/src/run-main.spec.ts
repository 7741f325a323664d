import { EventEmitter } from 'node:events';
import { runMain } from './run-main';

function fakeProcess() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  return {
    exits,
    emit: (signal: string) => emitter.emit(signal),
    proc: { once: (s: 'SIGTERM' | 'SIGINT', h: () => void) => emitter.once(s, h), exit: (code: number) => void exits.push(code) },
  };
}

function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  return { lines, info: (o: object) => lines.push({ ...o }), error: (o: object) => lines.push({ ...o }) };
}

describe('runMain', () => {
  it('announces the port, then stops once and exits 0 on SIGTERM', async () => {
    const fake = fakeProcess();
    const logger = recordingLogger();
    let stops = 0;
    const announced: string[] = [];
    await runMain({
      name: 'svc',
      logger,
      proc: fake.proc,
      announce: (line) => announced.push(line),
      start: async () => ({ port: 4321, stop: async () => void stops++ }),
    });
    expect(announced).toHaveLength(1);
    expect(announced[0].endsWith('\n')).toBe(true);
    expect(JSON.parse(announced[0])).toMatchObject({ event: 'listening', service: 'svc', port: 4321 });
    fake.emit('SIGTERM');
    fake.emit('SIGINT');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(stops).toBe(1);
    expect(fake.exits).toEqual([0]);
  });

  it('announces metrics_port when the service serves /metrics, so tests and supervisors can scrape it', async () => {
    const announced: string[] = [];
    await runMain({
      name: 'svc',
      logger: recordingLogger(),
      proc: fakeProcess().proc,
      announce: (line) => announced.push(line),
      start: async () => ({ port: 4321, metricsPort: 9465, stop: async () => undefined }),
    });
    expect(JSON.parse(announced[0])).toMatchObject({ event: 'listening', port: 4321, metrics_port: 9465 });
  });

  it('exits 1 naming the reason when start-up fails', async () => {
    const fake = fakeProcess();
    const logger = recordingLogger();
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    await runMain({ name: 'svc', logger, proc: fake.proc, start: async () => Promise.reject(new Error('REDIS_URL: bad')) });
    expect(fake.exits).toEqual([1]);
    expect(stderr).toHaveBeenCalledWith('svc: REDIS_URL: bad\n');
    stderr.mockRestore();
  });
});
