import Ajv from 'ajv';
import { countImageTokens } from '@switchyard/tokens';
import { extraPromptTokens, IMAGE_URL_ASSUMED, jsonPieces, NO_FEATURES, planToolCalls, structuredAnswer, valueForSchema, type SimFeatures } from './tools';

const ajv = new Ajv({ strict: false });
const weather = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const time = { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } } } };
const features = (over: Partial<SimFeatures>): SimFeatures => ({ ...NO_FEATURES, tools: [weather, time], ...over });

describe('valueForSchema', () => {
  it.each([
    { type: 'object', properties: { a: { type: 'integer', minimum: 3, maximum: 7 }, b: { type: 'number' }, c: { type: 'boolean' }, d: { type: 'null' } }, required: ['a', 'b', 'c', 'd'], additionalProperties: false },
    { type: 'object', properties: { tags: { type: 'array', items: { type: 'string', minLength: 12 }, minItems: 2 } }, required: ['tags'] },
    { type: 'object', properties: { v: { anyOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] }, k: { const: 'fixed' }, e: { enum: [1, 2, 3] } } },
    { type: 'object', properties: { nested: { type: 'object', properties: { deep: { type: ['string', 'null'] } }, required: ['deep'] } }, required: ['nested'] },
    { type: 'array', items: { type: 'integer' } },
  ])('produces a value valid against %j', (schema) => {
    for (const hash of [0, 1, 17, 123_456_789]) {
      const value = valueForSchema(schema, ['Vienna', 'rates', 'high'], hash);
      expect(ajv.validate(schema, value)).toBe(true);
    }
  });

  it('takes strings from the conversation and is deterministic', () => {
    const a = structuredAnswer({ type: 'json_schema', name: 'x', schema: weather.parameters }, 'Weather in Vienna', 5);
    expect(a).toBe(structuredAnswer({ type: 'json_schema', name: 'x', schema: weather.parameters }, 'Weather in Vienna', 5));
    expect(['Weather', 'in', 'Vienna']).toContain(JSON.parse(a).city);
    expect(jsonPieces(a).join('')).toBe(a);
  });
});

describe('planToolCalls', () => {
  it('calls the tools named in the last user turn, in order of mention', () => {
    expect(planToolCalls(features({ lastUserText: 'use get_time then get_weather' }), 3).map((c) => c.name)).toEqual(['get_time', 'get_weather']);
  });

  it('one call only when parallel calls are off', () => {
    expect(planToolCalls(features({ lastUserText: 'get_time and get_weather', parallelToolCalls: false }), 3).map((c) => c.name)).toEqual(['get_time']);
  });

  it('answers in text under auto with no tool named, after tool results, or with tool choice none', () => {
    expect(planToolCalls(features({ lastUserText: 'hello' }), 3)).toEqual([]);
    expect(planToolCalls(features({ lastUserText: 'get_weather', endsWithToolResult: true }), 3)).toEqual([]);
    expect(planToolCalls(features({ lastUserText: 'get_weather', toolChoice: 'none' }), 3)).toEqual([]);
  });

  it('required picks by the prompt hash; a named choice is always called (also after results: the forced structured-output tool)', () => {
    expect(planToolCalls(features({ lastUserText: 'hello', toolChoice: 'required' }), 1).map((c) => c.name)).toEqual(['get_time']);
    expect(planToolCalls(features({ lastUserText: 'x', toolChoice: { name: 'get_weather' }, endsWithToolResult: true }), 1).map((c) => c.name)).toEqual(['get_weather']);
  });

  it('arguments are valid against the tool schema', () => {
    for (const c of planToolCalls(features({ lastUserText: 'get_weather and get_time for Oslo' }), 9)) {
      const tool = [weather, time].find((t) => t.name === c.name)!;
      expect(ajv.validate(tool.parameters, JSON.parse(c.arguments))).toBe(true);
    }
  });
});

describe('extraPromptTokens', () => {
  it('bills a URL image as 1024×1024 and an inline one by its size', () => {
    const f = { ...NO_FEATURES, images: [{ size: undefined, detail: 'auto' as const }, { size: { width: 800, height: 600 }, detail: 'auto' as const }] };
    expect(extraPromptTokens(f, 'openai')).toBe(countImageTokens(IMAGE_URL_ASSUMED, 'openai') + countImageTokens({ width: 800, height: 600 }, 'openai'));
    expect(extraPromptTokens(f, 'anthropic')).toBe(1399 + 640);
  });
});
