import { fromAnthropicToolId, toAnthropicToolId } from './tool-call-ids';

describe('tool-call ids across providers', () => {
  it.each(['call_AbC123', 'toolu_01XyZ', 'a-b_c'])('keeps %s unchanged: already valid on both wires', (id) => {
    expect(toAnthropicToolId(id)).toBe(id);
    expect(fromAnthropicToolId(id)).toBe(id);
  });

  it.each(['call:1', 'id with spaces', 'ünïcode', 'sy1_looks_encoded', ''])('maps %j into ^[a-zA-Z0-9_-]+$ and back', (id) => {
    const wire = toAnthropicToolId(id);
    expect(wire).toMatch(/^[a-zA-Z0-9_-]+$/);
    expect(toAnthropicToolId(id)).toBe(wire);
    expect(fromAnthropicToolId(wire)).toBe(id);
  });

  it('leaves a provider id that merely starts with the prefix alone', () => {
    expect(fromAnthropicToolId('sy1_!!')).toBe('sy1_!!');
  });
});
