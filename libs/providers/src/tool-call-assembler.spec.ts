import { ToolCallAssembler } from './tool-call-assembler';

describe('ToolCallAssembler', () => {
  it('assembles interleaved pieces by index, in index order', () => {
    const a = new ToolCallAssembler();
    a.add({ type: 'tool_call_delta', index: 0, id: 'call_a', name: 'f', argumentsDelta: '' });
    a.add({ type: 'tool_call_delta', index: 1, id: 'call_b', name: 'g', argumentsDelta: '{"x"' });
    a.add({ type: 'tool_call_delta', index: 0, argumentsDelta: '{"y":1}' });
    a.add({ type: 'tool_call_delta', index: 1, argumentsDelta: ':2}' });
    expect(a.result()).toEqual([
      { id: 'call_a', name: 'f', arguments: '{"y":1}' },
      { id: 'call_b', name: 'g', arguments: '{"x":2}' },
    ]);
    expect(a.lastIndex).toBe(1);
  });

  it('a call whose arguments never arrived is {} (as its non-streamed answer says); no calls is undefined', () => {
    const a = new ToolCallAssembler();
    expect(a.result()).toBeUndefined();
    expect(a.lastIndex).toBeUndefined();
    a.add({ type: 'tool_call_delta', index: 0, id: 'toolu_1', name: 'now', argumentsDelta: '' });
    expect(a.result()).toEqual([{ id: 'toolu_1', name: 'now', arguments: '{}' }]);
  });
});
