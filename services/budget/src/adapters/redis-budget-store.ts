import { createHash } from 'node:crypto';
import type { Redis } from '@switchyard/redis';
import {
  type BudgetStore,
  type CapUsage,
  type CommitResult,
  type ReleaseResult,
  type ReserveResult,
  SETTLED_RETENTION_MS,
} from '../domain/budget-store';
import type { CapSpec } from '../domain/caps';
import { COMMIT_LUA, RELEASE_LUA, RESERVE_LUA, USAGE_LUA } from './redis-budget-lua';

export interface RedisBudgetStoreOptions {
  /**
   * Test seam: added to Redis TIME inside the scripts so contract tests can
   * cross an hour/day/month boundary without waiting. Always 0 in production.
   */
  timeShiftMs?: () => number;
}

/** Key prefix of a tenant; the braces are the Redis Cluster hash tag. */
export const budgetPrefix = (tenant: string) => `sy:bud:{${tenant}}:`;

interface Script {
  lua: string;
  sha: string;
}
const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') });
const SCRIPTS = { reserve: script(RESERVE_LUA), commit: script(COMMIT_LUA), release: script(RELEASE_LUA), usage: script(USAGE_LUA) };

const capArgs = (caps: CapSpec[]) => caps.flatMap((c) => [c.id, c.period, String(c.limitMicros), c.hard ? '1' : '0']);

/**
 * BudgetStore on Redis: each method is one Lua script (see redis-budget-lua.ts)
 * with time from Redis TIME, so replicas with skewed clocks agree on periods
 * and expiries. The caller owns the client (start.ts creates and quits it).
 */
export function createRedisBudgetStore(redis: Redis, options: RedisBudgetStoreOptions = {}): BudgetStore {
  const shift = options.timeShiftMs ?? (() => 0);

  async function run(s: Script, tenant: string, args: (string | number)[]): Promise<unknown> {
    const argv = [String(shift()), String(SETTLED_RETENTION_MS), ...args.map(String)];
    try {
      return await redis.evalsha(s.sha, 1, budgetPrefix(tenant), ...argv);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      return redis.eval(s.lua, 1, budgetPrefix(tenant), ...argv);
    }
  }

  return {
    async reserve(input): Promise<ReserveResult> {
      const r = (await run(SCRIPTS.reserve, input.tenant, [
        input.reservationId,
        input.amountMicros,
        input.ttlMs,
        input.requestId ?? '',
        input.caps.length,
        ...capArgs(input.caps),
      ])) as [number, string | number, number, number, number, number];
      if (r[0] === 1) return { granted: true, reservationId: String(r[1]), existing: r[2] === 1 };
      return {
        granted: false,
        cap: input.caps[Number(r[1])]!,
        spentMicros: r[2],
        reservedMicros: r[3],
        periodStartMs: r[4],
        periodEndMs: r[5],
      };
    },

    async commit({ tenant, caps, reservationId, actualMicros }): Promise<CommitResult> {
      const r = (await run(SCRIPTS.commit, tenant, [reservationId, actualMicros, caps.length, ...capArgs(caps)])) as [
        number,
        number,
        number,
        number,
        [number, number, number, number, number][],
      ];
      const at = r[3];
      return {
        found: r[0] === 1,
        returnedMicros: r[1],
        alreadySettled: r[2] === 1,
        crossed: r[4].map(([i, th, spent, start, epoch]) => ({
          cap: caps[i]!,
          thresholdPercent: th,
          spentMicros: spent,
          periodStartMs: start,
          epoch,
          atMs: at,
        })),
      };
    },

    async release({ tenant, reservationId }): Promise<ReleaseResult> {
      const r = (await run(SCRIPTS.release, tenant, [reservationId])) as [number, number];
      return { released: r[0] === 1, alreadySettled: r[1] === 1 };
    },

    async usage({ tenant, caps }): Promise<CapUsage[]> {
      const r = (await run(SCRIPTS.usage, tenant, [caps.length, ...caps.flatMap((c) => [c.id, c.period])])) as [
        number,
        number,
        number,
        number,
      ][];
      return caps.map((cap, i) => {
        const [spent, reserved, start, end] = r[i]!;
        return { cap, spentMicros: spent, reservedMicros: reserved, periodStartMs: start, periodEndMs: end };
      });
    },

    async close() {},
  };
}
