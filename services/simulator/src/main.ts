/**
 * Simulator CLI: `npx tsx services/simulator/src/main.ts [--scenario file.yaml] [--port n] [--host h]`.
 * Prints one JSON readiness line ({"event":"listening","port":n}) once listening; exits 0 on SIGTERM/SIGINT,
 * 1 with the problems on stderr if the scenario is invalid.
 */
import { readFileSync } from 'node:fs';
import { createSimulator, ScenarioError, parseScenarioText, BUILT_IN_SCENARIO, type Scenario } from './index';

function parseArgs(argv: string[]): { scenario?: string; port: number; host: string } {
  const out: { scenario?: string; port: number; host: string } = { port: 0, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag}: missing value`);
      return v;
    };
    switch (flag) {
      case '--scenario':
        out.scenario = value();
        break;
      case '--port': {
        const v = value();
        const port = Number(v);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: must be an integer 0..65535, got "${v}"`);
        out.port = port;
        break;
      }
      case '--host':
        out.host = value();
        break;
      case '--help':
        process.stdout.write('usage: simulator [--scenario <file.yaml|json>] [--port <n, 0 = any>] [--host <addr>]\n');
        process.exit(0);
      default:
        throw new Error(`unknown argument "${arg}" (expected --scenario, --port, --host)`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  let scenario: Scenario = BUILT_IN_SCENARIO;
  try {
    args = parseArgs(process.argv.slice(2));
    if (args.scenario) {
      let text: string;
      try {
        text = readFileSync(args.scenario, 'utf8');
      } catch (err) {
        throw new Error(`--scenario: cannot read ${args.scenario}: ${(err as Error).message}`);
      }
      scenario = parseScenarioText(text);
    }
  } catch (err) {
    const prefix = err instanceof ScenarioError ? `invalid scenario ${process.argv.slice(2).join(' ')}:\n` : '';
    process.stderr.write(`simulator: ${prefix}${(err as Error).message}\n`);
    process.exit(1);
  }
  const sim = await createSimulator({ scenario, port: args.port, host: args.host });
  process.stdout.write(
    JSON.stringify({ level: 30, time: Date.now(), name: 'simulator', event: 'listening', port: sim.port, url: sim.url, msg: 'simulator listening' }) + '\n',
  );
  const shutdown = () => {
    sim.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((err) => {
  process.stderr.write(`simulator: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
