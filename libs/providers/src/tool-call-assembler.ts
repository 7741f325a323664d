import type { ToolCall, ToolCallDelta } from './types';

/**
 * Folds streamed tool-call pieces into whole calls, by index. Both dialects
 * feed it neutral deltas, so a stream's Final carries the same calls whichever
 * provider produced them. A call whose arguments never arrived (Anthropic
 * sends no input_json_delta for a call without arguments) assembles to `{}`,
 * which is what its non-streamed answer says.
 */
export class ToolCallAssembler {
  private readonly calls: { id: string; name: string; arguments: string }[] = [];

  add(d: ToolCallDelta): void {
    const call = (this.calls[d.index] ??= { id: '', name: '', arguments: '' });
    if (d.id) call.id = d.id;
    if (d.name) call.name = d.name;
    call.arguments += d.argumentsDelta;
    this.lastIndex = d.index;
  }

  /**
   * Index of the most recent call to receive a piece: when a stream breaks,
   * the call whose arguments may be cut off (Final.partial_tool_call_index).
   * Undefined when no call started.
   */
  lastIndex: number | undefined;

  get size(): number {
    return this.calls.filter(Boolean).length;
  }

  /** The calls in index order; undefined when the stream made none. */
  result(): ToolCall[] | undefined {
    const out = this.calls.filter(Boolean).map((c) => ({ id: c.id, name: c.name, arguments: c.arguments.length > 0 ? c.arguments : '{}' }));
    return out.length > 0 ? out : undefined;
  }
}
