import { jsonDepth, MAX_JSON_DEPTH } from './json-depth';

const nested = (levels: number): unknown => {
  let v: unknown = 'leaf';
  for (let i = 0; i < levels; i++) v = i % 2 ? { x: v } : [v];
  return v;
};

describe('jsonDepth', () => {
  it('counts objects and arrays, not scalars', () => {
    expect([jsonDepth('a'), jsonDepth(null), jsonDepth({}), jsonDepth([]), jsonDepth({ a: [1, { b: 2 }] })]).toEqual([0, 0, 1, 1, 3]);
    expect(jsonDepth({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'array', items: { type: 'object', properties: {} } } } })).toBe(5);
  });

  it('stops counting past the limit, without recursion, however deep the document', () => {
    expect(jsonDepth(nested(MAX_JSON_DEPTH))).toBe(MAX_JSON_DEPTH);
    expect(jsonDepth(nested(1_000_000))).toBe(MAX_JSON_DEPTH + 1);
    expect(jsonDepth(nested(10), 3)).toBe(4);
  });
});
