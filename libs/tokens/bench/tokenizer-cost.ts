/**
 * Prints what counting tokens costs: first over varied real text (the first
 * 12 MB of this checkout's node_modules *.md and *.d.ts files, in 8 KiB
 * prompts), µs per KiB and how much the process's RSS grew while counting it
 * (first, so that it is the pages this text touched: mostly the pair cache's);
 * then per 1 KiB of ordinary prompt (arg: sample count), then per 1 MB of
 * ordinary text and of whitespace-free text that used to stall the tokenizer.
 * `npm run bench -- tokens [samples]`
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { countTextTokens, measureMegabyteCost, measureTokenizerCost } from '../src/index';

/** Documentation and type declarations of the installed packages: English and code, as prompts carry. */
function variedText(maxBytes: number): string {
  const parts: string[] = [];
  let size = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (size >= maxBytes) return;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && (entry.name.endsWith('.md') || entry.name.endsWith('.d.ts'))) {
        const text = readFileSync(path, 'utf8');
        parts.push(text);
        size += text.length;
      }
    }
  };
  walk(resolve(__dirname, '../../../node_modules'));
  return parts.join('\n');
}

const varied = variedText(12_000_000);
const prompts: string[] = [];
for (let i = 0; i < varied.length; i += 8192) prompts.push(varied.slice(i, i + 8192));
countTextTokens('warm up');
const rssBefore = process.memoryUsage().rss;
let tokens = 0;
const start = process.hrtime.bigint();
for (const p of prompts) tokens += countTextTokens(p);
const millis = Number(process.hrtime.bigint() - start) / 1e6;
console.log(
  JSON.stringify({
    text: 'varied (node_modules *.md, *.d.ts)',
    bytes: varied.length,
    prompts: prompts.length,
    tokens,
    microsPerKiB: Number(((millis * 1000) / (varied.length / 1024)).toFixed(1)),
    rssGrowthMB: Number(((process.memoryUsage().rss - rssBefore) / 1048576).toFixed(1)),
  }),
);

const samples = Number(process.argv[2] ?? 2000);
const r = measureTokenizerCost(samples);
console.log(JSON.stringify({ ...r, microsPerKiB: Number(r.microsPerKiB.toFixed(1)), tokensPerKiB: Number(r.tokensPerKiB.toFixed(1)) }));
const mb = measureMegabyteCost();
for (const [kind, ms] of Object.entries(mb.millisPerMB)) {
  console.log(JSON.stringify({ text: kind, bytes: 1_000_000, millis: Number(ms.toFixed(1)), tokens: mb.tokensPerMB[kind], runs: mb.runs }));
}
