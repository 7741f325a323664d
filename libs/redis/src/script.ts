import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import { assertSameSlot } from './keys';

export interface ScriptDefinition {
  /** Identifier, unique per client; becomes the command name (`sy_lim_acquire`). */
  name: string;
  lua: string;
  numberOfKeys: number;
  /** Enforce one hash tag across KEYS (cluster safety). Default true. */
  sameSlot?: boolean;
}

export type ScriptFn = (keys: string[], args: Array<string | number>) => Promise<unknown>;

const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const defined = new WeakMap<Redis, Map<string, string>>();
const tracer = () => trace.getTracer('@switchyard/redis');

/**
 * Registers a Lua script once and returns a typed caller. Runs via EVALSHA and
 * falls back to EVAL on NOSCRIPT (ioredis `defineCommand`), so a Redis restart
 * or SCRIPT FLUSH is invisible to callers. Each call is a span
 * `redis.script <name>` around the EVALSHA span.
 */
export function defineScript(redis: Redis, definition: ScriptDefinition): ScriptFn {
  const { name, lua, numberOfKeys } = definition;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TypeError(`script name ${JSON.stringify(name)} is invalid: use letters, digits and _`);
  }
  if (typeof lua !== 'string' || lua.trim() === '') throw new TypeError(`script ${name}: lua is empty`);
  if (!Number.isInteger(numberOfKeys) || numberOfKeys < 0) {
    throw new TypeError(`script ${name}: numberOfKeys must be a non-negative integer, got ${numberOfKeys}`);
  }
  let scripts = defined.get(redis);
  if (!scripts) defined.set(redis, (scripts = new Map()));
  const previous = scripts.get(name);
  if (previous !== undefined && previous !== lua) {
    throw new Error(`script ${name} is already defined on this client with different Lua`);
  }
  if (previous === undefined) {
    if (name in redis) throw new Error(`script name ${name} collides with an existing Redis client method`);
    redis.defineCommand(name, { lua, numberOfKeys });
    scripts.set(name, lua);
  }
  const command = (redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[name]!;
  const sameSlot = definition.sameSlot ?? true;

  return (keys, args) => {
    if (!Array.isArray(keys) || keys.length !== numberOfKeys) {
      return Promise.reject(new TypeError(`script ${name} takes ${numberOfKeys} keys, got ${Array.isArray(keys) ? keys.length : typeof keys}`));
    }
    const bad = args.findIndex((a) => (typeof a !== 'string' && typeof a !== 'number') || (typeof a === 'number' && !Number.isFinite(a)));
    if (bad >= 0) return Promise.reject(new TypeError(`script ${name}: ARGV[${bad + 1}] must be a string or finite number, got ${String(args[bad])}`));
    try {
      if (sameSlot) assertSameSlot(`script ${name}`, keys);
    } catch (err) {
      return Promise.reject(err);
    }
    return tracer().startActiveSpan(
      `redis.script ${name}`,
      { kind: SpanKind.INTERNAL, attributes: { 'db.system': 'redis', 'db.operation.name': 'EVALSHA', 'switchyard.redis.script': name } },
      async (span) => {
        try {
          return await command.call(redis, ...keys, ...args);
        } catch (err) {
          span.recordException(err as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  };
}
