/** One bad input field: its path as the caller spelled it (`messages[2].role`) and what is wrong with it. */
export interface FieldProblem {
  field: string;
  problem: string;
}

/** Marks FieldErrors across module copies (the prototype chain alone would miss a second copy). */
const FIELD_ERROR = Symbol.for('switchyard.FieldError');

/**
 * Bad caller input, naming the field. Transport-free on purpose: domains and
 * libraries throw it (or a subclass) without knowing about gRPC, and the one
 * error mapping at the boundary turns it into INVALID_ARGUMENT with a
 * google.rpc.BadRequest listing `problems`. Nobody catches it to re-map it.
 */
export class FieldError extends Error {
  override name = 'FieldError';
  readonly [FIELD_ERROR] = true;
  /** Every bad field, the first one (`field`, `problem`) included; a validator that checks everything reports them together. */
  readonly problems: readonly FieldProblem[];

  constructor(
    readonly field: string,
    readonly problem: string,
    options: { cause?: unknown; more?: readonly FieldProblem[] } = {},
  ) {
    const problems = [{ field, problem }, ...(options.more ?? [])];
    super(problems.map((p) => `${p.field}: ${p.problem}`).join('; '), options.cause === undefined ? undefined : { cause: options.cause });
    this.problems = problems;
  }

  /** One error for several bad fields (at least one). */
  static of(problems: readonly FieldProblem[], options: { cause?: unknown } = {}): FieldError {
    const [first, ...more] = problems;
    if (!first) throw new Error('FieldError.of: problems must not be empty');
    return new FieldError(first.field, first.problem, { ...options, more });
  }
}

/** True for a FieldError or any subclass, also from another copy of this module. */
export function isFieldError(err: unknown): err is FieldError {
  return err instanceof FieldError || (err instanceof Error && (err as Partial<Record<typeof FIELD_ERROR, boolean>>)[FIELD_ERROR] === true);
}
