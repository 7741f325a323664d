/**
 * Prints what counting tokens costs: per 1 KiB of ordinary prompt (arg: sample
 * count), then per 1 MB of ordinary text and of whitespace-free text that used
 * to stall the tokenizer. `npm run bench -- tokens [samples]`
 */
import { measureMegabyteCost, measureTokenizerCost } from '../src/index';

const samples = Number(process.argv[2] ?? 2000);
const r = measureTokenizerCost(samples);
console.log(JSON.stringify({ ...r, microsPerKiB: Number(r.microsPerKiB.toFixed(1)), tokensPerKiB: Number(r.tokensPerKiB.toFixed(1)) }));
const mb = measureMegabyteCost();
for (const [kind, ms] of Object.entries(mb.millisPerMB)) {
  console.log(JSON.stringify({ text: kind, bytes: 1_000_000, millis: Number(ms.toFixed(1)), tokens: mb.tokensPerMB[kind], runs: mb.runs }));
}
