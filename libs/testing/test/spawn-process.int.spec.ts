import { join } from 'node:path';
import { parseReadyLine, spawnProcess } from '../src/index';

const FIXTURE = join(__dirname, 'fixtures/listen.ts');

describe('parseReadyLine', () => {
  it('accepts only JSON with event=listening and a numeric port', () => {
    expect(parseReadyLine('{"event":"listening","port":123}')).toBe(123);
    expect(parseReadyLine('{"event":"listening","port":"123"}')).toBeUndefined();
    expect(parseReadyLine('listening on 123')).toBeUndefined();
    expect(parseReadyLine('{"event":"closing","port":1,"msg":"listening"}')).toBeUndefined();
  });
});

describe('spawnProcess', () => {
  it('waits for the readiness line, passes env, and stops with SIGTERM', async () => {
    const forwarded: string[] = [];
    const child = await spawnProcess({ entry: FIXTURE, env: { FIXTURE_GREETING: 'from-env' }, onLine: (line) => forwarded.push(line) });
    try {
      const response = await fetch(`http://127.0.0.1:${child.port}/`);
      expect(await response.text()).toBe('from-env');
      expect(child.lines).toContain('not json, ignored');
      // Every line reaches onLine as it arrives (npm run stack prints them prefixed).
      expect(forwarded).toEqual(child.lines);
    } finally {
      const code = await child.stop();
      expect(code).toBe(0);
    }
    expect(child.lines).toContain('fixture: SIGTERM, closing');
  });

  it('rejects with the captured output when the process exits before ready', async () => {
    await expect(spawnProcess({ entry: FIXTURE, args: ['crash'] })).rejects.toThrow(
      /exited \(code 3[\s\S]*configured to crash/,
    );
  });

  it('rejects on readiness timeout and kills the process', async () => {
    await expect(spawnProcess({ entry: FIXTURE, args: ['silent'], readyTimeoutMs: 1500 })).rejects.toThrow(
      /did not print a "listening" line within 1500 ms/,
    );
  });

  it('kill() ends the process with SIGKILL', async () => {
    const child = await spawnProcess({ entry: FIXTURE });
    await child.kill();
    expect(await child.exited).toBeNull();
  });
});
