/**
 * Lua for the Redis budget store. Every script takes ONE key, the tenant's
 * prefix `sy:bud:{<tenant>}:`, and derives the keys it touches from it; all of
 * them share the `{tenant}` hash tag, so on Redis Cluster they live in one slot.
 * (The counter key depends on the period of Redis TIME, which is only known
 * inside the script, hence derived rather than declared.)
 *
 * Layout under the prefix:
 *   <capId>:<label>   hash  s = spent, r = reserved, e = alert epoch, a50/a80/a100 = alert sent at
 *   res:<id>          hash  st = held|expired|released|committed, amt, exp, keys (counter keys held),
 *                           found/ret (the first Commit's answer, replayed on repeats)
 *   resexp            zset  reservation ids by expiry: reclaimed at the start of every script
 *   req:<requestId>   string  reservation id for the caller's idempotency id
 *
 * ARGV[1] = time shift in ms (0 in production; tests use it to cross periods),
 * ARGV[2] = retention in ms of settled reservations and ended periods.
 * Counter amounts are passed to HINCRBY as the decimal strings we received,
 * never through Lua numbers, so large values keep every digit.
 */
const PRELUDE = `
local prefix = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local RETENTION = tonumber(ARGV[2])

-- Howard Hinnant's civil calendar algorithms (proleptic Gregorian, UTC).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m > 2) and (m - 3) or (m + 9)
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = (mp < 10) and (mp + 3) or (mp - 9)
  if m <= 2 then y = y + 1 end
  return y, m, d
end
-- Same labels and bounds as domain/period.ts.
local function window(period, ms)
  local days = math.floor(ms / 86400000)
  local y, m, d = civil_from_days(days)
  local date = string.format('%04d-%02d-%02d', y, m, d)
  if period == 'hour' then
    local s = math.floor(ms / 3600000) * 3600000
    return date .. 'T' .. string.format('%02d', math.floor((ms - days * 86400000) / 3600000)), s, s + 3600000
  elseif period == 'day' then
    return date, days * 86400000, (days + 1) * 86400000
  end
  local ny, nm = y, m + 1
  if nm == 13 then ny = y + 1; nm = 1 end
  return string.format('%04d-%02d', y, m), days_from_civil(y, m, 1) * 86400000, days_from_civil(ny, nm, 1) * 86400000
end

-- Adds amount string amt (negated when sign is '-') to field f of every counter in keys.
local function add(keys, f, sign, amt)
  -- HINCRBY refuses '-0'.
  if amt == '0' then return end
  for k in string.gmatch(keys, '%S+') do
    -- A counter whose period ended long ago may be gone; do not recreate it negative.
    if redis.call('EXISTS', k) == 1 then redis.call('HINCRBY', k, f, sign .. amt) end
  end
end
local function unhold(keys, amt) add(keys, 'r', '-', amt) end

-- Expired reservations stop holding before anything else is decided, and are
-- charged at their reserved amount: the call may have run (its Commit lost with
-- a crashed router or budget replica). A late Commit or Release corrects it.
local function reclaim()
  local zkey = prefix .. 'resexp'
  local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, 500)
  for _, id in ipairs(ids) do
    local rk = prefix .. 'res:' .. id
    local st = redis.call('HMGET', rk, 'st', 'amt', 'keys')
    if st[1] == 'held' then
      unhold(st[3], st[2])
      add(st[3], 's', '', st[2])
      redis.call('HSET', rk, 'st', 'expired')
      redis.call('PEXPIRE', rk, RETENTION)
    end
    redis.call('ZREM', zkey, id)
  end
end
reclaim()
`;

/**
 * ARGV[3] reservation id, [4] amount, [5] ttl ms, [6] request id or '', [7] cap count,
 * then per cap: id, period, limit, hard ('1'/'0').
 * Returns {1, id, existing} or {0, capIndex, spent, reserved, periodStart, periodEnd}.
 */
export const RESERVE_LUA = `${PRELUDE}
if ARGV[6] ~= '' then
  local prior = redis.call('GET', prefix .. 'req:' .. ARGV[6])
  if prior and redis.call('HGET', prefix .. 'res:' .. prior, 'st') == 'held' then
    return {1, prior, 1}
  end
end
local amount = tonumber(ARGV[4])
local n = tonumber(ARGV[7])
local keys, ends = {}, {}
for i = 0, n - 1 do
  local b = 8 + i * 4
  local label, s, e = window(ARGV[b + 1], now)
  local k = prefix .. ARGV[b] .. ':' .. label
  keys[i + 1] = k
  ends[i + 1] = e
  if ARGV[b + 3] == '1' then
    local v = redis.call('HMGET', k, 's', 'r')
    local spent = tonumber(v[1] or '0')
    local reserved = tonumber(v[2] or '0')
    if spent + reserved + amount > tonumber(ARGV[b + 2]) then
      return {0, i, spent, reserved, s, e}
    end
  end
end
for i, k in ipairs(keys) do
  redis.call('HINCRBY', k, 'r', ARGV[4])
  redis.call('PEXPIREAT', k, ends[i] + RETENTION)
end
local exp = now + tonumber(ARGV[5])
local rk = prefix .. 'res:' .. ARGV[3]
redis.call('HSET', rk, 'st', 'held', 'amt', ARGV[4], 'exp', exp, 'keys', table.concat(keys, ' '))
redis.call('PEXPIREAT', rk, exp + RETENTION)
redis.call('ZADD', prefix .. 'resexp', exp, ARGV[3])
if ARGV[6] ~= '' then
  redis.call('SET', prefix .. 'req:' .. ARGV[6], ARGV[3], 'PX', tonumber(ARGV[5]) + RETENTION)
end
return {1, ARGV[3], 0}
`;

/**
 * ARGV[3] reservation id, [4] actual, [5] cap count, then per cap: id, period, limit, hard.
 * Returns {found, returned, alreadySettled, now, {capIndex, threshold, spent, periodStart, epoch}...}.
 */
export const COMMIT_LUA = `${PRELUDE}
local rk = prefix .. 'res:' .. ARGV[3]
local st = redis.call('HMGET', rk, 'st', 'amt', 'keys', 'found', 'ret')
if st[1] == 'committed' then
  return {tonumber(st[4]), tonumber(st[5]), 1, now, {}}
end
local held, found = 0, 0
if st[1] == 'held' then
  unhold(st[3], st[2])
  held = tonumber(st[2])
  found = 1
  redis.call('ZREM', prefix .. 'resexp', ARGV[3])
elseif st[1] == 'expired' then
  -- Replace the expiry's worst-case charge with the actual cost below.
  add(st[3], 's', '-', st[2])
  held = tonumber(st[2])
end
local crossed = {}
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  local b = 6 + i * 4
  local label, s, e = window(ARGV[b + 1], now)
  local k = prefix .. ARGV[b] .. ':' .. label
  local spent = redis.call('HINCRBY', k, 's', ARGV[4])
  redis.call('PEXPIREAT', k, e + RETENTION)
  local limit = tonumber(ARGV[b + 2])
  for _, th in ipairs({50, 80, 100}) do
    -- HSETNX makes each threshold fire once per cap and period, whatever the concurrency.
    if spent * 100 >= th * limit and redis.call('HSETNX', k, 'a' .. th, now) == 1 then
      local epoch = redis.call('HINCRBY', k, 'e', 1)
      crossed[#crossed + 1] = {i, th, spent, s, epoch}
    end
  end
end
local ret = held - tonumber(ARGV[4])
redis.call('HSET', rk, 'st', 'committed', 'found', found, 'ret', ret)
redis.call('PEXPIRE', rk, RETENTION)
return {found, ret, 0, now, crossed}
`;

/** ARGV[3] reservation id. Returns {released, alreadySettled}. */
export const RELEASE_LUA = `${PRELUDE}
local rk = prefix .. 'res:' .. ARGV[3]
local st = redis.call('HMGET', rk, 'st', 'amt', 'keys')
if not st[1] then return {0, 0} end
if st[1] == 'held' then
  unhold(st[3], st[2])
elseif st[1] == 'expired' then
  -- A late Release: the call cost nothing after all, so the expiry charge is taken back.
  add(st[3], 's', '-', st[2])
else
  return {0, 1}
end
redis.call('HSET', rk, 'st', 'released')
redis.call('PEXPIRE', rk, RETENTION)
redis.call('ZREM', prefix .. 'resexp', ARGV[3])
return {1, 0}
`;

/** ARGV[3] cap count, then per cap: id, period. Returns per cap {spent, reserved, periodStart, periodEnd}. */
export const USAGE_LUA = `${PRELUDE}
local out = {}
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local b = 4 + i * 2
  local label, s, e = window(ARGV[b + 1], now)
  local v = redis.call('HMGET', prefix .. ARGV[b] .. ':' .. label, 's', 'r')
  out[i + 1] = {tonumber(v[1] or '0'), tonumber(v[2] or '0'), s, e}
end
return out
`;
