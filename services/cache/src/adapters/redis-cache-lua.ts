/**
 * Lua for the Redis cache store. Keys of one tenant share the `{tenant}` hash
 * tag: `sy:cache:{t}:e:<key>` (entry hash: v = bytes, at = stored at,
 * exp = fresh until, st = stale until; Redis expiry = ttl + stale window),
 * `sy:cache:{t}:l:<key>` (single-flight lease "<id>|<until ms>"),
 * `sy:cache:{t}:idx` (zset of keys, score 0, for prefix invalidation by lex range)
 * and `sy:cache:{t}:ttl` (zset of keys by stale-until, to prune the index).
 *
 * ARGV[1] of every script is a time shift in ms added to Redis TIME (0 in
 * production; contract tests use it to move past TTLs without waiting). Because
 * of it, expiry is also checked explicitly against the script's clock, with
 * Redis key expiry as the garbage collector.
 */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
`;

/** Returns the lease holder id if the lease is live, else nil. */
const LEASE = `
local function lease_holder(k)
  local l = redis.call('GET', k)
  if not l then return nil end
  local sep = string.find(l, '|', 1, true)
  if tonumber(string.sub(l, sep + 1)) <= now then return nil end
  return string.sub(l, 1, sep - 1)
end
local function take_lease(k, id, ttl)
  if lease_holder(k) then return false end
  redis.call('SET', k, id .. '|' .. (now + ttl), 'PX', ttl)
  return true
end
`;

/**
 * KEYS: entry, lease. ARGV: shift, allowStale ('1'/'0'), leaseTtlMs, leaseId.
 * Returns {code, value, storedAt, expiresAt, staleUntil, leaseId, now};
 * code 1 hit, 2 stale, 3 miss, 4 leader, 5 wait.
 */
export const LOOKUP_LUA = `${NOW}${LEASE}
local ttl = tonumber(ARGV[3])
local e = redis.call('HMGET', KEYS[1], 'v', 'at', 'exp', 'st')
if e[1] and now < tonumber(e[4]) then
  if now < tonumber(e[3]) then
    return {1, e[1], tonumber(e[2]), tonumber(e[3]), tonumber(e[4]), '', now}
  end
  if ARGV[2] == '1' then
    local lease = ''
    if ttl > 0 and take_lease(KEYS[2], ARGV[4], ttl) then lease = ARGV[4] end
    return {2, e[1], tonumber(e[2]), tonumber(e[3]), tonumber(e[4]), lease, now}
  end
end
if ttl == 0 then return {3, '', 0, 0, 0, '', now} end
if take_lease(KEYS[2], ARGV[4], ttl) then return {4, '', 0, 0, 0, ARGV[4], now} end
return {5, '', 0, 0, 0, '', now}
`;

/**
 * KEYS: entry, lease, idx, ttl. ARGV: shift, value, ttlMs, staleTtlMs, leaseId or '', key.
 * Returns {storedAt, expiresAt, staleUntil}.
 */
export const STORE_LUA = `${NOW}${LEASE}
local exp = now + tonumber(ARGV[3])
local st = exp + tonumber(ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'at', now, 'exp', exp, 'st', st)
redis.call('PEXPIRE', KEYS[1], st - now)
redis.call('ZADD', KEYS[3], 0, ARGV[6])
redis.call('ZADD', KEYS[4], st, ARGV[6])
-- Keep the index as small as the live entries: drop members whose entry is gone.
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)
for _, m in ipairs(gone) do
  redis.call('ZREM', KEYS[3], m)
  redis.call('ZREM', KEYS[4], m)
end
if ARGV[5] ~= '' and lease_holder(KEYS[2]) == ARGV[5] then redis.call('DEL', KEYS[2]) end
return {now, exp, st}
`;

/** KEYS: lease. ARGV: shift, leaseId. Returns 1 when released. */
export const RELEASE_LUA = `${NOW}${LEASE}
if lease_holder(KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/**
 * KEYS: idx, ttl. ARGV: shift, entry key prefix ('sy:cache:{t}:e:'), mode ('key'/'prefix'),
 * target, batch size. Entry keys are derived from index members (same hash tag).
 * Returns {removed, more}: prefix invalidation runs in batches so one call never blocks Redis long.
 */
export const INVALIDATE_LUA = `${NOW}
local removed = 0
local function drop(m)
  local n = redis.call('DEL', ARGV[2] .. m)
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
  return n
end
if ARGV[3] == 'key' then return {drop(ARGV[4]), 0} end
local min, max = '-', '+'
if ARGV[4] ~= '' then
  min = '[' .. ARGV[4]
  max = '(' .. ARGV[4] .. '\\255'
end
local batch = tonumber(ARGV[5])
local members = redis.call('ZRANGEBYLEX', KEYS[1], min, max, 'LIMIT', 0, batch)
for _, m in ipairs(members) do removed = removed + drop(m) end
local more = 0
if #members == batch then more = 1 end
return {removed, more}
`;
