import { FieldError, isFieldError } from './field-error';

class InvalidThingError extends FieldError {
  override readonly name = 'InvalidThingError';
}

describe('FieldError', () => {
  it('names the field and the problem in its message', () => {
    const err = new FieldError('messages[2].role', 'must be ROLE_USER');
    expect(err.message).toBe('messages[2].role: must be ROLE_USER');
    expect(err.problems).toEqual([{ field: 'messages[2].role', problem: 'must be ROLE_USER' }]);
  });

  it('reports several bad fields together, the first one as field/problem', () => {
    const err = FieldError.of([
      { field: 'deployment', problem: 'is required' },
      { field: 'ttl_ms', problem: 'must be at most 600000, got 900000' },
    ]);
    expect(err.field).toBe('deployment');
    expect(err.problem).toBe('is required');
    expect(err.message).toBe('deployment: is required; ttl_ms: must be at most 600000, got 900000');
    expect(err.problems).toHaveLength(2);
  });

  it('refuses an empty list of problems', () => {
    expect(() => FieldError.of([])).toThrow('must not be empty');
  });

  it('keeps its cause', () => {
    const cause = new Error('parse failed');
    expect(new FieldError('body', 'is not JSON', { cause }).cause).toBe(cause);
  });

  it('recognises subclasses, and FieldErrors from another copy of the module by their brand', () => {
    const sub = new InvalidThingError('thing', 'is odd');
    expect(isFieldError(sub)).toBe(true);
    expect(sub.name).toBe('InvalidThingError');
    const foreign = Object.assign(new Error('x: y'), { [Symbol.for('switchyard.FieldError')]: true, field: 'x', problem: 'y' });
    expect(isFieldError(foreign)).toBe(true);
    expect(isFieldError(Object.assign(new Error('x: y'), { field: 'x', problem: 'y' }))).toBe(false);
    expect(isFieldError('x: y')).toBe(false);
  });
});
