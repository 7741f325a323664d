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

/** Base64 text → its bytes; a 400 naming `param` when it is not base64 (Buffer.from would skip what it cannot read and send the rest). */
export function base64Bytes(text: string, param: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw badRequest(param, 'is not valid base64');
  return Buffer.from(compact, 'base64');
}

/** `data:<media>;base64,<data>` → its parts; undefined for any other URL; a 400 naming `param` when its data is not base64. */
export function dataUrl(url: string, param: string): { mediaType: string; data: Buffer } | undefined {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return m ? { mediaType: m[1]!, data: base64Bytes(m[2]!, param) } : undefined;
}

/** A JSON document the caller gave as an object (a schema, a tool call's input) → its text; refused when nested too deeply to be read back without a stack overflow. */
export function jsonText(v: Obj, param: string): string {
  if (jsonDepth(v) > MAX_JSON_DEPTH) throw badRequest(param, `is nested more than ${MAX_JSON_DEPTH} levels deep`);
  return JSON.stringify(v);
}
