/**
 * How deeply a JSON document given inside a request (a tool's parameter
 * schema, a response schema, a tool call's input) may nest. Every step that
 * reads one (JSON.stringify, the providers' SDKs, schema checks) recurses, so
 * a document thousands of levels deep would end in a stack overflow, answered
 * as an internal error. A schema for real arguments nests a few levels,
 * two JSON levels per nested object (`properties`, then the property).
 */
export const MAX_JSON_DEPTH = 100;

/** The nesting depth of `value` (a scalar is 0, `{}` and `[]` are 1), counted without recursion and only up to `limit + 1`. */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const here = depth + 1;
    if (here > deepest) deepest = here;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, here]);
  }
  return deepest;
}
