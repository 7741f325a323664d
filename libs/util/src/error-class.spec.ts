import { ErrorClass as ErrorClassEnum } from '@switchyard/contracts';
import { ERROR_CLASSES, ERROR_CLASS_TABLE, errorClassesWhere, errorClassTraits, isErrorClass } from './error-class';

describe('the error-class table', () => {
  it('names exactly the classes of the proto ErrorClass enum (services map enum names through it)', () => {
    const protoNames = Object.keys(ErrorClassEnum)
      .filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED')
      .sort();
    expect([...ERROR_CLASSES].sort()).toEqual(protoNames);
    expect(Object.keys(ERROR_CLASS_TABLE).sort()).toEqual(protoNames);
  });

  it('counts only OVERLOADED, SERVER_ERROR, TIMEOUT and NETWORK as breaker failures (DESIGN "Error classes")', () => {
    expect(errorClassesWhere('countsTowardBreaker')).toEqual(['OVERLOADED', 'SERVER_ERROR', 'TIMEOUT', 'NETWORK']);
  });

  it('pays retries of the same four classes from the retry budget', () => {
    expect(errorClassesWhere('transient')).toEqual(['OVERLOADED', 'SERVER_ERROR', 'TIMEOUT', 'NETWORK']);
  });

  it('treats rate limits and exhausted quota as quota classes', () => {
    expect(errorClassesWhere('quota')).toEqual(['RATE_LIMITED', 'QUOTA_EXHAUSTED']);
  });

  it('never retries or falls back once a stream was interrupted, and never falls back from a content filter or a bad request', () => {
    expect(ERROR_CLASS_TABLE.STREAM_INTERRUPTED).toMatchObject({ retryable: false, fallbackAllowed: false });
    expect(errorClassesWhere('fallbackAllowed').sort()).toEqual(
      ERROR_CLASSES.filter((c) => !['STREAM_INTERRUPTED', 'CONTENT_FILTER', 'INVALID_REQUEST'].includes(c)).sort(),
    );
    expect(errorClassesWhere('retryable')).toEqual(['RATE_LIMITED', 'OVERLOADED', 'SERVER_ERROR', 'TIMEOUT', 'NETWORK']);
  });

  it('looks a class up by name and answers undefined for a name that is no class', () => {
    expect(errorClassTraits('NETWORK')?.countsTowardBreaker).toBe(true);
    expect(errorClassTraits('UNSPECIFIED')).toBeUndefined();
    expect(errorClassTraits('toString')).toBeUndefined();
    expect(isErrorClass('AUTH')).toBe(true);
    expect(isErrorClass('auth')).toBe(false);
  });
});
