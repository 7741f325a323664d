/**
 * `npx tsx bench/stack/cpu-profile-summary.ts <file.cpuprofile> [top]`
 *
 * Self time of a V8 CPU profile (`node --cpu-prof`, e.g. the stack bench's
 * `--cpu-prof <dir>`) grouped by who asked for it: a sample in Node's own
 * JavaScript or a native frame is credited to the nearest caller that is an
 * npm package (node_modules/<pkg>) or our code (libs/…, services/…); GC and
 * idle stand alone. Then the top functions by self time.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpu-profile-summary.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

function owner(url: string): string | undefined {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ours = /\/((?:libs|services|bench)\/[^/]+)\//.exec(url);
  if (ours) return ours[1];
  // A built service (scripts/build.ts): our libraries are bundled into it.
  const built = /\/dist\/([^/]+)\/main\.js/.exec(url);
  return built ? `our code (dist/${built[1]})` : undefined;
}

function group(node: ProfileNode): string {
  const { functionName } = node.callFrame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'V8/program';
  for (let n: ProfileNode | undefined = node; n; n = byId.get(parentOf.get(n.id) ?? -1)) {
    const o = owner(n.callFrame.url);
    if (o) return o;
  }
  return 'node (event loop, sockets, timers)';
}

const groups = new Map<string, number>();
const fns = new Map<string, number>();
let total = 0;
for (const [id, us] of selfUs) {
  const node = byId.get(id)!;
  total += us;
  const g = group(node);
  groups.set(g, (groups.get(g) ?? 0) + us);
  const f = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(libs|services)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
  fns.set(f, (fns.get(f) ?? 0) + us);
}
const busy = total - (groups.get('idle') ?? 0);
const pct = (us: number) => `${((us / busy) * 100).toFixed(1)} %`;
console.log(`${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages of busy)\n`);
for (const [g, us] of [...groups].filter(([g]) => g !== 'idle').sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(us).padStart(8)}  ${g}`);
console.log('');
for (const [f, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) if (!f.startsWith('(idle)')) console.log(`${pct(us).padStart(8)}  ${f}`);
