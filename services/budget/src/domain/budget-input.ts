import { FieldError } from '@switchyard/util';

/** A caller mistake; `field` is the proto field path, so the gRPC error (INVALID_ARGUMENT) names it. */
export class BudgetInputError extends FieldError {
  override readonly name = 'BudgetInputError';
}

/** Largest single reservation or commit: 1M USD. Keeps every sum exact in Lua's doubles. */
export const MAX_AMOUNT_MICROS = 1_000_000_000_000n;
/** Longest reservation a caller may ask for. */
export const MAX_TTL_MS = 3_600_000;
export const MAX_ID_LENGTH = 128;

/** A money amount in micro-USD within bounds, as a number (exact below 2^53). */
export function amount(field: string, value: bigint): number {
  if (value < 0n) throw new BudgetInputError(field, `must not be negative, got ${value}`);
  if (value > MAX_AMOUNT_MICROS) throw new BudgetInputError(field, `must be at most ${MAX_AMOUNT_MICROS} (1M USD), got ${value}`);
  return Number(value);
}
