/** Prints the cost of counting tokens in 1 KiB of prompt: `npx tsx libs/tokens/bench/tokenizer-cost.ts`. */
import { measureTokenizerCost } from '../src/index';

const samples = Number(process.argv[2] ?? 2000);
const r = measureTokenizerCost(samples);
console.log(JSON.stringify({ ...r, microsPerKiB: Number(r.microsPerKiB.toFixed(1)), tokensPerKiB: Number(r.tokensPerKiB.toFixed(1)) }));
