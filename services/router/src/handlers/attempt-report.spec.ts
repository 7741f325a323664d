import { CLASS_POLICY, type Classification, type ErrorClass } from '@switchyard/providers';
import { outcomeErrorClass } from './attempt-report';

const interrupted = (by: ErrorClass, extra: Partial<Classification> = {}): Classification => ({
  ...CLASS_POLICY.STREAM_INTERRUPTED,
  errorClass: 'STREAM_INTERRUPTED',
  countsTowardBreaker: CLASS_POLICY[by].countsTowardBreaker,
  interruptedBy: by,
  message: 'stream interrupted after partial output',
  ...extra,
});

describe('the class an attempt outcome carries to the breakers', () => {
  it('a stream broken by a breaker failure carries that failure', () => {
    expect(outcomeErrorClass('STREAM_INTERRUPTED', interrupted('NETWORK'))).toBe('NETWORK');
    expect(outcomeErrorClass('STREAM_INTERRUPTED', interrupted('OVERLOADED'))).toBe('OVERLOADED');
    expect(outcomeErrorClass('STREAM_INTERRUPTED', interrupted('TIMEOUT', { timeoutKind: 'idle' }))).toBe('TIMEOUT');
  });

  it('a stream ended by the caller\'s deadline, or by a client error, stays an interruption the breakers do not count', () => {
    expect(outcomeErrorClass('STREAM_INTERRUPTED', interrupted('TIMEOUT', { timeoutKind: 'total' }))).toBe('STREAM_INTERRUPTED');
    expect(outcomeErrorClass('STREAM_INTERRUPTED', interrupted('CONTENT_FILTER'))).toBe('STREAM_INTERRUPTED');
    expect(outcomeErrorClass('STREAM_INTERRUPTED', { ...CLASS_POLICY.STREAM_INTERRUPTED, errorClass: 'STREAM_INTERRUPTED', message: 'ended without an end event' })).toBe('STREAM_INTERRUPTED');
  });

  it('any other attempt carries its own class', () => {
    expect(outcomeErrorClass(undefined, undefined)).toBeUndefined();
    expect(outcomeErrorClass('SERVER_ERROR', { ...CLASS_POLICY.SERVER_ERROR, errorClass: 'SERVER_ERROR', message: '500' })).toBe('SERVER_ERROR');
  });
});
