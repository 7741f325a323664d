import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const MAIN = resolve(__dirname, '../src/main.ts');
const DEFAULT_YAML = resolve(__dirname, '../scenarios/default.yaml');

function run(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function readiness(child: ChildProcess): Promise<{ event: string; port: number }> {
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line.includes('"listening"')) return JSON.parse(line);
  }
  throw new Error('simulator exited before its readiness line');
}

describe('simulator CLI', () => {
  it('starts with the documented example scenario, prints the readiness line, serves, and exits 0 on SIGTERM', async () => {
    const child = run(['--scenario', DEFAULT_YAML, '--port', '0']);
    try {
      const ready = await readiness(child);
      expect(ready.event).toBe('listening');
      expect(ready.port).toBeGreaterThan(0);
      const res = await fetch(`http://127.0.0.1:${ready.port}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-cli' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status).toBe(200);
      const scenario = (await (await fetch(`http://127.0.0.1:${ready.port}/_admin/scenario`)).json()) as { deployments: Record<string, unknown> };
      expect(Object.keys(scenario.deployments)).toContain('claude-sonnet-4-6');
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('exits 1 with the key path on stderr when the scenario is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'deployments:\n  gpt-4o:\n    faults:\n      rate_limit: 1.5\n');
    const child = run(['--scenario', file, '--port', '0']);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toContain('deployments.gpt-4o.faults.rate_limit: must be between 0 and 1, got 1.5');
  });

  it('exits 1 on an unknown flag', async () => {
    const child = run(['--prot', '1']);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(1);
    expect(stderr).toContain('unknown argument "--prot"');
  });
});
