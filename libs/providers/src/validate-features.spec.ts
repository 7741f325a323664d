import { isFieldError } from '@switchyard/util';
import type { ChatRequest } from './types';
import {
  ImageTooLargeError,
  InvalidJsonSchemaError,
  InvalidToolArgumentsError,
  MAX_IMAGE_BYTES,
  UnknownToolCallIdError,
  UnknownToolChoiceError,
  validateChatFeatures,
} from './validate-features';
import { validateChatRequest } from './validate';

const tool = { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } };
const base: ChatRequest = { messages: [{ role: 'user', content: 'hi' }], maxTokens: 10, tools: [tool] };

function thrown(req: ChatRequest): unknown {
  try {
    validateChatFeatures(req);
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('validateChatFeatures names the bad field', () => {
  it.each([
    ['a schema that is not an object', { ...base, tools: [{ ...tool, parameters: 'nope' as never }] }, InvalidJsonSchemaError, 'tools[0].parameters'],
    ['a misspelt type', { ...base, tools: [{ ...tool, parameters: { type: 'object', properties: { q: { type: 'strng' } } } }] }, InvalidJsonSchemaError, 'tools[0].parameters.properties.q.type'],
    ['a non-object root', { ...base, tools: [{ ...tool, parameters: { type: 'array' } }] }, InvalidJsonSchemaError, 'tools[0].parameters.type'],
    ['a bad response schema', { ...base, responseFormat: { type: 'json_schema', name: 'x', schema: { required: 'q' } } }, InvalidJsonSchemaError, 'responseFormat.schema.required'],
    ['a named tool_choice not among the tools', { ...base, toolChoice: { name: 'other' } }, UnknownToolChoiceError, 'toolChoice.name'],
    ['required without tools', { messages: base.messages, maxTokens: 5, toolChoice: 'required' }, UnknownToolChoiceError, 'toolChoice'],
  ] as const)('rejects %s', (_what, req, type, field) => {
    const err = thrown(req as ChatRequest);
    expect(err).toBeInstanceOf(type);
    expect(isFieldError(err)).toBe(true);
    expect((err as { field: string }).field).toBe(field);
  });

  const call = { id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' };

  it('rejects a tool message whose id matches no earlier call (or one already answered)', () => {
    const req: ChatRequest = {
      ...base,
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: '', toolCalls: [call] },
        { role: 'tool', toolCallId: 'call_2', content: 'r' },
      ],
    };
    expect(thrown(req)).toBeInstanceOf(UnknownToolCallIdError);
    expect((thrown(req) as { field: string }).field).toBe('messages[2].toolCallId');
    const twice: ChatRequest = {
      ...base,
      messages: [...req.messages.slice(0, 2), { role: 'tool', toolCallId: 'call_1', content: 'r' }, { role: 'tool', toolCallId: 'call_1', content: 'r' }],
    };
    expect((thrown(twice) as Error).message).toMatch(/messages\[3\]\.toolCallId: "call_1" was already answered/);
  });

  it('rejects a message between a tool-calling turn and its results', () => {
    const req: ChatRequest = {
      ...base,
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: '', toolCalls: [call, { ...call, id: 'call_2' }] },
        { role: 'tool', toolCallId: 'call_1', content: 'r' },
        { role: 'user', content: 'and?' },
      ],
    };
    const err = thrown(req) as { field: string; message: string };
    expect(err.field).toBe('messages[3]');
    expect(err.message).toMatch(/"call_2" of messages\[1\] need their tool messages/);
  });

  it('rejects arguments that are not a JSON object', () => {
    for (const args of ['{not json', '[1]', '"s"']) {
      const req: ChatRequest = { ...base, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', toolCalls: [{ ...call, arguments: args }] }] };
      const err = thrown(req);
      expect(err).toBeInstanceOf(InvalidToolArgumentsError);
      expect((err as { field: string }).field).toBe('messages[1].toolCalls[0].arguments');
    }
  });

  it('rejects schemas and arguments nested too deeply to be read back, naming them', () => {
    const deepText = '{"x":'.repeat(20_000) + '1' + '}'.repeat(20_000);
    const deep = JSON.parse(deepText) as Record<string, unknown>;
    const schemaErr = thrown({ ...base, tools: [{ ...tool, parameters: { type: 'object', properties: {}, x: deep } }] });
    expect(schemaErr).toBeInstanceOf(InvalidJsonSchemaError);
    expect(schemaErr).toMatchObject({ field: 'tools[0].parameters', problem: expect.stringMatching(/nested more than 100 levels/) });
    const argsErr = thrown({ ...base, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', toolCalls: [{ ...call, arguments: deepText }] }] });
    expect(argsErr).toBeInstanceOf(InvalidToolArgumentsError);
    expect((argsErr as { field: string }).field).toBe('messages[1].toolCalls[0].arguments');
  });

  it('rejects an image over the size bound, and a media type no provider takes', () => {
    const big = 'A'.repeat(Math.ceil(((MAX_IMAGE_BYTES + 3) * 4) / 3));
    const req = (data: string, mediaType = 'image/png'): ChatRequest => ({ ...base, messages: [{ role: 'user', content: [{ type: 'image', source: { kind: 'base64', mediaType, data } }] }] });
    const err = thrown(req(big));
    expect(err).toBeInstanceOf(ImageTooLargeError);
    expect((err as { field: string }).field).toBe('messages[0].content[0].data');
    expect((thrown(req('AAAA', 'image/bmp')) as { field: string }).field).toBe('messages[0].content[0].mediaType');
    expect(thrown(req('AAAA'))).toBeUndefined();
  });

  it('accepts a well-formed tool conversation, and validateChatRequest runs these checks too', () => {
    const ok: ChatRequest = {
      ...base,
      toolChoice: { name: 'lookup' },
      responseFormat: { type: 'json_schema', name: 'out', schema: { type: 'object', properties: { a: { anyOf: [{ type: 'string' }, { type: 'null' }] } } } },
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: '', toolCalls: [call] },
        { role: 'tool', toolCallId: 'call_1', content: 'r' },
      ],
    };
    expect(() => validateChatRequest(ok)).not.toThrow();
    expect(() => validateChatRequest({ ...ok, toolChoice: { name: 'nope' } })).toThrow(UnknownToolChoiceError);
  });
});
