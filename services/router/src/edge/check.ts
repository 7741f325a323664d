import { jsonDepth, MAX_JSON_DEPTH } from '@switchyard/util';
import { badRequest } from './errors';

/** Small type checks that name the parameter (`messages[2].content`) in their error. */
export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

export function obj(v: unknown, param: string): Obj {
  if (!isObj(v)) throw badRequest(param, `must be an object, got ${kind(v)}`);
  return v;
}
export function arr(v: unknown, param: string): unknown[] {
  if (!Array.isArray(v)) throw badRequest(param, `must be an array, got ${kind(v)}`);
  return v;
}
export function str(v: unknown, param: string): string {
  if (typeof v !== 'string') throw badRequest(param, `must be a string, got ${kind(v)}`);
  return v;
}
export function num(v: unknown, param: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(param, `must be a number, got ${kind(v)}`);
  return v;
}
export function int(v: unknown, param: string): number {
  const n = num(v, param);
  if (!Number.isInteger(n)) throw badRequest(param, `must be an integer, got ${n}`);
  return n;
}
export function bool(v: unknown, param: string): boolean {
  if (typeof v !== 'boolean') throw badRequest(param, `must be a boolean, got ${kind(v)}`);
  return v;
}
/** undefined and null both mean "not given" (SDKs send explicit nulls). */
export const given = (v: unknown): boolean => v !== undefined && v !== null;

/** Refuses parameters the dialect does not define (clients learn of a typo instead of a silently different answer). */
export function onlyKnown(o: Obj, known: ReadonlySet<string>, prefix: string): void {
  for (const key of Object.keys(o)) {
    if (!known.has(key)) throw badRequest(`${prefix}${key}`, 'unrecognized parameter');
  }
}

/** `data:<media>;base64,<data>` → its parts; undefined for any other URL. */
export function dataUrl(url: string): { mediaType: string; data: Buffer } | undefined {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return m ? { mediaType: m[1]!, data: Buffer.from(m[2]!, 'base64') } : undefined;
}

/** A JSON document the caller gave as an object (a schema, a tool call's input) → its text; refused when nested too deeply to be read back without a stack overflow. */
export function jsonText(v: Obj, param: string): string {
  if (jsonDepth(v) > MAX_JSON_DEPTH) throw badRequest(param, `is nested more than ${MAX_JSON_DEPTH} levels deep`);
  return JSON.stringify(v);
}
