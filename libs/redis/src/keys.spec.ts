import { assertSameSlot, hashTagOf, key } from './keys';
import { reconnectDelay } from './client';

describe('key', () => {
  it('puts the tag in braces so one entity shares a slot', () => {
    expect(key('sy:lim', 'gpt4o-east', 'rpm', 1700000000)).toBe('sy:lim:{gpt4o-east}:rpm:1700000000');
    expect(key('sy:bud', 'acme')).toBe('sy:bud:{acme}');
    expect(hashTagOf(key('sy:lim', 'a', 'x'))).toBe('a');
  });

  it.each([
    [() => key('', 'a'), /key prefix "" is invalid/],
    [() => key('sy lim', 'a'), /key prefix/],
    [() => key('sy:lim', ''), /hash tag must be a non-empty string/],
    [() => key('sy:lim', 'a{b}'), /hash tag "a\{b\}" must not contain braces/],
    [() => key('sy:lim', 'a', 'ok', ''), /key part 2 must be a non-empty string/],
    [() => key('sy:lim', 'a', 'has space'), /key part 1 "has space"/],
    [() => key('sy:lim', 'a', Number.NaN), /key part 1 must be a finite number/],
  ])('rejects bad input, naming it (%#)', (build, message) => {
    expect(build).toThrow(message);
  });
});

describe('hashTagOf / assertSameSlot', () => {
  it('follows the Redis Cluster rule: first non-empty {...}', () => {
    expect(hashTagOf('plain')).toBe('plain');
    expect(hashTagOf('a{}b{c}')).toBe('a{}b{c}');
    expect(hashTagOf('x{t}y{z}')).toBe('t');
    expect(() => assertSameSlot('s', ['a:{t}:1', 'b:{t}:2'])).not.toThrow();
    expect(() => assertSameSlot('s', ['a:{t}:1', 'b:{u}:2'])).toThrow(/s: keys must share one hash tag.*"a:\{t\}:1" and "b:\{u\}:2"/);
  });
});

describe('reconnectDelay', () => {
  it('grows exponentially to the cap, with full jitter', () => {
    expect(reconnectDelay(1, 2000, () => 1)).toBe(100);
    expect(reconnectDelay(3, 2000, () => 1)).toBe(400);
    expect(reconnectDelay(30, 2000, () => 1)).toBe(2000);
    expect(reconnectDelay(30, 2000, () => 0.5)).toBe(1000);
    expect(reconnectDelay(1, 2000, () => 0)).toBe(10);
  });
});
