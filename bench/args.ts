/** Command-line flags of the benches that take `--name value`. */
const argv = process.argv.slice(2);

/** `--name <n>` as a number > 0; the fallback when absent or not such a number. */
export function positiveArg(name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** `--name <text>`, or undefined when absent. */
export function stringArg(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}
