import { createHash } from 'node:crypto';
import type { Redis } from '@switchyard/redis';
import type { CacheStore, LookupResult, LookupStatusName } from '../domain/cache-store';
import { INVALIDATE_LUA, LOOKUP_LUA, RELEASE_LUA, STORE_LUA } from './redis-cache-lua';

export interface RedisCacheStoreOptions {
  /** Test seam: added to Redis TIME inside the scripts (always 0 in production). */
  timeShiftMs?: () => number;
}

/** Every key of a tenant starts with this; the braces are the Redis Cluster hash tag. */
export const cacheTenantPrefix = (tenant: string) => `sy:cache:{${tenant}}:`;

interface Script {
  lua: string;
  sha: string;
}
const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') });
const SCRIPTS = { lookup: script(LOOKUP_LUA), store: script(STORE_LUA), release: script(RELEASE_LUA), invalidate: script(INVALIDATE_LUA) };
const STATUS: Record<number, LookupStatusName> = { 1: 'hit', 2: 'stale', 3: 'miss', 4: 'leader', 5: 'wait' };
const INVALIDATE_BATCH = 500;

/**
 * CacheStore on Redis. Scripts run through the *Buffer* variants of EVALSHA
 * so cached bytes come back exactly as stored (a string reply would be
 * UTF-8-decoded and corrupt binary protobuf).
 */
export function createRedisCacheStore(redis: Redis, options: RedisCacheStoreOptions = {}): CacheStore {
  const shift = options.timeShiftMs ?? (() => 0);

  async function run(s: Script, keys: string[], args: (string | number | Buffer)[]): Promise<unknown> {
    const argv = [String(shift()), ...args.map((a) => (Buffer.isBuffer(a) ? a : String(a)))];
    try {
      return await redis.callBuffer('EVALSHA', s.sha, keys.length, ...keys, ...argv);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      return redis.callBuffer('EVAL', s.lua, keys.length, ...keys, ...argv);
    }
  }
  const keysOf = (tenant: string, key: string) => {
    const p = cacheTenantPrefix(tenant);
    return { entry: `${p}e:${key}`, lease: `${p}l:${key}`, idx: `${p}idx`, ttl: `${p}ttl` };
  };

  return {
    async lookup({ tenant, key, allowStale, leaseTtlMs, leaseId }): Promise<LookupResult> {
      const k = keysOf(tenant, key);
      const r = (await run(SCRIPTS.lookup, [k.entry, k.lease], [allowStale ? '1' : '0', leaseTtlMs, leaseId])) as [
        number,
        Buffer,
        number,
        number,
        number,
        Buffer,
        number,
      ];
      const status = STATUS[r[0]]!;
      const lease = r[5].toString('utf8');
      return {
        status,
        entry:
          status === 'hit' || status === 'stale'
            ? { value: new Uint8Array(r[1]), storedAtMs: r[2], expiresAtMs: r[3], staleUntilMs: r[4] }
            : undefined,
        leaseId: lease || undefined,
        nowMs: r[6],
      };
    },

    async store({ tenant, key, value, ttlMs, staleTtlMs, leaseId }) {
      const k = keysOf(tenant, key);
      const r = (await run(SCRIPTS.store, [k.entry, k.lease, k.idx, k.ttl], [
        Buffer.from(value.buffer, value.byteOffset, value.byteLength),
        ttlMs,
        staleTtlMs,
        leaseId ?? '',
        key,
      ])) as [number, number, number];
      return { storedAtMs: r[0], expiresAtMs: r[1], staleUntilMs: r[2] };
    },

    async releaseLease({ tenant, key, leaseId }) {
      return (await run(SCRIPTS.release, [keysOf(tenant, key).lease], [leaseId])) === 1;
    },

    async invalidate({ tenant, target }) {
      const p = cacheTenantPrefix(tenant);
      const [mode, value] = 'key' in target ? ['key', target.key] : ['prefix', target.prefix];
      let removed = 0;
      for (;;) {
        const [n, more] = (await run(SCRIPTS.invalidate, [`${p}idx`, `${p}ttl`], [`${p}e:`, mode, value, INVALIDATE_BATCH])) as [
          number,
          number,
        ];
        removed += n;
        if (!more) return removed;
      }
    },

    async close() {},
  };
}
