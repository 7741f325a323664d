/**
 * Lua for the Redis QuotaStore. Each operation is one script, so it is atomic
 * across every limiter replica, and takes its time from Redis TIME, so replica
 * clocks never matter. The sliding-log arithmetic mirrors domain/sliding-window.ts
 * (integers only).
 */

import { DAY_WINDOW_MS, dayBucketMs } from '../domain/day-window';
import { WINDOW_MS } from '../domain/sliding-window';

/** The PRELUDE lines that fix the window lengths (the store rewrites them for time-scaled tests). */
export const windowLines = (windowMs: number, dayWindowMs: number, bucketMs: number) =>
  `local W = ${windowMs}\nlocal D = ${dayWindowMs}\nlocal B = ${bucketMs}\n`;

const PRELUDE = `
${windowLines(WINDOW_MS, DAY_WINDOW_MS, dayBucketMs(DAY_WINDOW_MS))}local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function num(x) return string.format('%.0f', x) end
local function weight(member) return tonumber(string.match(member, ':(%d+)$')) end
-- Stores a recomputed running sum, or drops it once nothing is counted.
local function putSum(sumKey, sum, zset)
  if sum <= 0 or redis.call('ZCARD', zset) == 0 then
    redis.call('DEL', sumKey)
    return 0
  end
  redis.call('SET', sumKey, num(sum), 'KEEPTTL')
  return sum
end
-- Sliding log: ZSET of "<id>:<units>" scored by admission time, plus the running
-- sum of units in the window. Entries leave when ts <= now - W.
local function wsum(log, sumKey, now)
  local old = redis.call('ZRANGEBYSCORE', log, '-inf', now - W)
  local sum = tonumber(redis.call('GET', sumKey) or '0')
  if #old == 0 then return sum end
  for _, m in ipairs(old) do sum = sum - weight(m) end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - W)
  return putSum(sumKey, sum, log)
end
local function wadd(log, sumKey, member, ts, units, now)
  if units <= 0 then return end
  redis.call('ZADD', log, ts, member .. ':' .. num(units))
  redis.call('INCRBY', sumKey, units)
  local newest = tonumber(redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')[2])
  local ttl = newest + W - now + 1000
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', sumKey, ttl)
end
-- Removes an entry; returns its ts, or nil when it already left the window.
local function wdel(log, sumKey, member)
  local ts = redis.call('ZSCORE', log, member)
  if not ts then return nil end
  redis.call('ZREM', log, member)
  local sum = tonumber(redis.call('GET', sumKey) or '0') - weight(member)
  if sum <= 0 then redis.call('DEL', sumKey) else redis.call('SET', sumKey, num(sum), 'KEEPTTL') end
  return tonumber(ts)
end
-- ms until sum + need fits in limit (the oldest entries leave first).
local function wwait(log, sum, need, limit, now)
  local excess = sum + need - limit
  if excess <= 0 then return 0 end
  local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
  local freed = 0
  for j = 1, #entries, 2 do
    freed = freed + weight(entries[j])
    if freed >= excess then return tonumber(entries[j + 1]) + W - now end
  end
  return W
end
-- Tokens per day (domain/day-window.ts): a ZSET of bucket indices (score = index),
-- a HASH bucket -> tokens and the running sum. The tokens of an admission go to
-- the bucket of its minute, floor(now / B), and a bucket counts until its END + D:
-- never less than a day after any of its admissions, at most one bucket more
-- (conservative: capacity returns up to a bucket late, never early). An exact
-- log would keep one entry per request for a whole day.
local function dexpiry(b) return (b + 1) * B + D end
local function dttl(idx, hash, sumKey, now)
  local newest = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')[2]
  if not newest then return end
  local ttl = dexpiry(tonumber(newest)) - now + 1000
  redis.call('PEXPIRE', idx, ttl)
  redis.call('PEXPIRE', hash, ttl)
  redis.call('PEXPIRE', sumKey, ttl)
end
-- Drops the buckets whose end + D has passed; returns the tokens still counted.
local function dsum(idx, hash, sumKey, now)
  local cutoff = math.floor((now - D) / B) - 1
  local old = redis.call('ZRANGEBYSCORE', idx, '-inf', cutoff)
  local sum = tonumber(redis.call('GET', sumKey) or '0')
  if #old == 0 then return sum end
  local units = redis.call('HMGET', hash, unpack(old))
  for j = 1, #old do sum = sum - tonumber(units[j] or '0') end
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', cutoff)
  redis.call('HDEL', hash, unpack(old))
  return putSum(sumKey, sum, idx)
end
local function dadd(idx, hash, sumKey, b, units, now)
  if units <= 0 then return end
  redis.call('ZADD', idx, b, num(b))
  redis.call('HINCRBY', hash, num(b), units)
  redis.call('INCRBY', sumKey, units)
  dttl(idx, hash, sumKey, now)
end
-- Corrects bucket b by delta (a settle); false when b already expired (call dsum first).
local function dfix(idx, hash, sumKey, b, delta, now)
  if not redis.call('ZSCORE', idx, num(b)) then return false end
  local cur = tonumber(redis.call('HGET', hash, num(b)) or '0')
  local nxt = cur + delta
  if nxt < 0 then nxt = 0 end
  redis.call('HSET', hash, num(b), num(nxt))
  local sum = tonumber(redis.call('GET', sumKey) or '0') + nxt - cur
  if sum <= 0 then redis.call('DEL', sumKey) else redis.call('SET', sumKey, num(sum)) end
  dttl(idx, hash, sumKey, now)
  return true
end
-- ms until sum + need fits in limit (the oldest buckets expire first); walks
-- the buckets oldest first, only on a denial.
local function dwait(idx, hash, sum, need, limit, now)
  local excess = sum + need - limit
  if excess <= 0 then return 0 end
  local freed, from = 0, 0
  while true do
    local bs = redis.call('ZRANGE', idx, from, from + 63)
    if #bs == 0 then break end
    local units = redis.call('HMGET', hash, unpack(bs))
    for j = 1, #bs do
      freed = freed + tonumber(units[j] or '0')
      if freed >= excess then return dexpiry(tonumber(bs[j])) - now end
    end
    from = from + 64
  end
  return D + B
end
`;

/**
 * KEYS: per limit key i (6 each): rpm, tpm, conc, cool, unavail, admitted; then
 * the reservation key, the request-id key, and the wait queue of the queue key:
 * queue (ZSET ticket → start tag), tickets (HASH ticket → "deadline,lease,requests,tokens"),
 * meta (HASH vt, seq, f:<flow> = the flow's last finish tag). A ticket's lease runs
 * leaseMs past the wait it was told, so a waiter sleeps the whole wait in one go.
 * `admitted` is a plain counter (INCRBY requests on every grant, no TTL): it
 * cannot live in the rpm log, which expires once its entries leave the window.
 * After the queue keys: per key (2 each) rpm sum, tpm sum; then per key (3 each)
 * the TPD bucket index, bucket tokens and sum (see dsum).
 * ARGV: n, requests, tokens, ttlMs, reservationId, hasRequestId (1/0), then per
 * key: rpm, tpm, concurrency (0 = unlimited), name; then queue index (1-based, 0 =
 * no queue), flow, ticket ('' = none yet), enqueue (1/0), maxWaitMs, leaseMs;
 * then per key its tpd (0 = unlimited); then leaseMs (0 = one call).
 *
 * A lease (leaseMs > 0, no concurrency or tpd limit on its keys) must leave at
 * least its own cost free on every rpm/tpm dimension, and its entries are
 * stamped at now + leaseMs: the router admits its calls until then, so none of
 * them leaves the window earlier than the provider forgets it. SETTLE_LUA
 * re-stamps what was used.
 *
 * Waiting (start-time fair queueing, see domain/wait-queue.md in the README):
 * a waiter holds a ticket whose start tag is max(vt, its flow's last finish);
 * capacity of the queue key is handed out in start-tag order (ties: arrival), so
 * one flow (tenant) with many waiters gets one turn per round while a newly
 * arriving flow starts at vt, at the front. An acquire on the queue key must fit
 * its cost PLUS the cost of every live ticket ahead of it, so nobody overtakes.
 * Tickets past their deadline or lease are purged here; they consumed nothing.
 * Returns {1, reservationId, now, replayed} or {0, index, reason, waitMs, now, '', short}
 * or {2, index, reason, waitMs, now, ticket, short} (queued: poll again after waitMs);
 * short: for a concurrency block, the slots that must free before it fits
 * (live holders + tickets ahead − limit + 1), 0 otherwise.
 */
export const ACQUIRE_LUA = `${PRELUDE}
local n = tonumber(ARGV[1])
local requests = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local resId = ARGV[5]
local now = clock()
local resKey = KEYS[6 * n + 1]
local reqKey = KEYS[6 * n + 2]
local qz, qt, qm = KEYS[6 * n + 3], KEYS[6 * n + 4], KEYS[6 * n + 5]
local qb = 6 + 4 * n
local qi = tonumber(ARGV[qb + 1])
local flow = ARGV[qb + 2]
local ticket = ARGV[qb + 3]
local enqueue = ARGV[qb + 4] == '1'
local maxWait = tonumber(ARGV[qb + 5])
local lease = tonumber(ARGV[qb + 6])
local leaseMs = tonumber(ARGV[qb + 7 + n] or '0')
local stamp = now + leaseMs
if ARGV[6] == '1' then
  local prev = redis.call('GET', reqKey)
  if prev then return {1, prev, now, 1} end
end
local function dropTicket(t)
  redis.call('ZREM', qz, t)
  redis.call('HDEL', qt, t)
end
-- The wait queue of key qi: purge dead tickets, find our start tag and what is ahead.
local mine, myStart, vt = false, 0, 0
local aheadN, aheadReq, aheadTok = 0, 0, 0
if qi > 0 then
  vt = tonumber(redis.call('HGET', qm, 'vt') or '0')
  if ticket ~= '' and redis.call('HEXISTS', qt, ticket) == 1 then
    local rec = redis.call('HGET', qt, ticket)
    local dl = tonumber(string.match(rec, '^(%d+),'))
    if dl > now then
      mine = true
      myStart = tonumber(redis.call('ZSCORE', qz, ticket))
    else
      dropTicket(ticket)
    end
  end
  if not mine then
    ticket = ''
    myStart = math.max(vt, tonumber(redis.call('HGET', qm, 'f:' .. flow) or '0'))
  end
  local all = redis.call('ZRANGE', qz, 0, -1, 'WITHSCORES')
  for j = 1, #all, 2 do
    local m, sc = all[j], tonumber(all[j + 1])
    if m ~= ticket then
      local rec = redis.call('HGET', qt, m)
      local dl, ls, rq, tk
      if rec then dl, ls, rq, tk = string.match(rec, '^(%d+),(%d+),(%d+),(%d+)$') end
      if not dl or tonumber(dl) <= now or tonumber(ls) <= now then
        dropTicket(m)
      elseif sc < myStart or (sc == myStart and (not mine or m < ticket)) then
        aheadN = aheadN + 1
        aheadReq = aheadReq + tonumber(rq)
        aheadTok = aheadTok + tonumber(tk)
      end
    end
  end
end
-- Check every key first; write nothing unless all admit (all-or-nothing).
-- bShort: for a concurrency block, the slots that must free before this acquire fits.
local bIndex, bReason, bWait, bShort = 0, '', -1, 0
local other = false
local function block(i, reason, wait, short)
  if i ~= qi or reason == 'unavailable' then other = true end
  if wait > bWait then bIndex, bReason, bWait, bShort = i, reason, wait, short or 0 end
end
local writes = {}
local dayWrites = {}
for i = 1, n do
  local k = (i - 1) * 6
  local a = 6 + (i - 1) * 4
  local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local extraReq, extraTok, extraN = 0, 0, 0
  if i == qi then extraReq, extraTok, extraN = aheadReq, aheadTok, aheadN end
  if redis.call('EXISTS', KEYS[k + 5]) == 1 then block(i, 'unavailable', 1e15) end
  local cool = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
  if cool > now then block(i, 'cooldown', cool - now) end
  local sums = 6 * n + 5 + 2 * (i - 1)
  local dims = { { KEYS[k + 1], KEYS[sums + 1], rpm, requests, extraReq, 'rpm' }, { KEYS[k + 2], KEYS[sums + 2], tpm, tokens, extraTok, 'tpm' } }
  for _, d in ipairs(dims) do
    local limit = d[3]
    if limit > 0 then
      local sum = wsum(d[1], d[2], now)
      local need = d[4] + d[5]
      local margin = 0
      if leaseMs > 0 then margin = d[4] end
      if sum + need + margin <= limit then
        writes[#writes + 1] = { d[1], d[2], d[4] }
      else
        block(i, d[6], wwait(d[1], sum, need, limit, now))
      end
    end
  end
  local tpd = tonumber(ARGV[qb + 6 + i])
  if tpd > 0 then
    local dk = 8 * n + 5 + 3 * (i - 1)
    local sum = dsum(KEYS[dk + 1], KEYS[dk + 2], KEYS[dk + 3], now)
    local need = tokens + extraTok
    if sum + need <= tpd then
      dayWrites[#dayWrites + 1] = dk
    else
      block(i, 'tpd', dwait(KEYS[dk + 1], KEYS[dk + 2], sum, need, tpd, now))
    end
  end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    local count = redis.call('ZCARD', KEYS[k + 3])
    if count + extraN >= conc then
      local idx = count + extraN - conc
      local wait = 1000
      if idx < count then
        local s = redis.call('ZRANGE', KEYS[k + 3], idx, idx, 'WITHSCORES')
        wait = tonumber(s[2]) - now
      end
      block(i, 'concurrency', wait, idx + 1)
    end
  end
end
if bWait >= 0 then
  if bReason == 'unavailable' then bWait = 0 end
  if other or not (mine or enqueue) then
    if mine then dropTicket(ticket) end
    return {0, bIndex - 1, bReason, bWait, now, '', bShort}
  end
  -- Only the queue key blocks: take (or keep) our place in line. A concurrency
  -- wait is only an upper bound (slots free on Settle), so its waiter polls and
  -- the lease does not stretch over it.
  local told = bWait
  if bReason == 'concurrency' then told = 0 end
  if not mine then
    ticket = string.format('%015d', redis.call('HINCRBY', qm, 'seq', 1))
    redis.call('ZADD', qz, myStart, ticket)
    redis.call('HSET', qm, 'f:' .. flow, num(myStart + requests))
    redis.call('HSET', qt, ticket, num(now + maxWait) .. ',' .. num(now + told + lease) .. ',' .. requests .. ',' .. tokens)
  else
    local dl = string.match(redis.call('HGET', qt, ticket), '^(%d+),')
    redis.call('HSET', qt, ticket, dl .. ',' .. num(now + told + lease) .. ',' .. requests .. ',' .. tokens)
  end
  for _, q in ipairs({ qz, qt, qm }) do redis.call('PEXPIRE', q, maxWait + lease + 60000) end
  return {2, bIndex - 1, bReason, bWait, now, ticket, bShort}
end
if mine then
  dropTicket(ticket)
  if myStart > vt then redis.call('HSET', qm, 'vt', num(myStart)) end
end
for _, w in ipairs(writes) do wadd(w[1], w[2], resId, stamp, w[3], now) end
-- The reservation records its day bucket: Settle corrects that one.
local day = math.floor(now / B)
for _, dk in ipairs(dayWrites) do dadd(KEYS[dk + 1], KEYS[dk + 2], KEYS[dk + 3], day, tokens, now) end
local expiresAt = now + ttl
local record = {'n', n, 'requests', requests, 'tokens', tokens, 'q', ARGV[6], 'qk', reqKey, 'b', num(day), 'l', leaseMs, 'g', num(now)}
for i = 1, n do
  local k = (i - 1) * 6
  local a = 6 + (i - 1) * 4
  local conc = tonumber(ARGV[a + 3])
  redis.call('INCRBY', KEYS[k + 6], requests)
  if conc > 0 then
    redis.call('ZADD', KEYS[k + 3], expiresAt, resId)
    local last = redis.call('ZRANGE', KEYS[k + 3], -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', KEYS[k + 3], tonumber(last[2]) - now + 1000)
  end
  record[#record + 1] = 'k' .. i
  record[#record + 1] = ARGV[a + 4]
  record[#record + 1] = 'r' .. i
  record[#record + 1] = ARGV[a + 1]
  record[#record + 1] = 't' .. i
  record[#record + 1] = ARGV[a + 2]
  record[#record + 1] = 'c' .. i
  record[#record + 1] = ARGV[a + 3]
  record[#record + 1] = 'd' .. i
  record[#record + 1] = ARGV[qb + 6 + i]
end
redis.call('HSET', resKey, unpack(record))
redis.call('PEXPIRE', resKey, ttl)
if ARGV[6] == '1' then redis.call('SET', reqKey, resId, 'PX', ttl) end
return {1, resId, now, 0}
`;

/** KEYS: queue, tickets. ARGV: ticket. Leaves the line (deadline passed, caller gone). Returns 1 if it was there. */
export const LEAVE_LUA = `
local had = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return had
`;

/**
 * KEYS: reservation, request-id key, then per reserved key i (3 each): rpm, tpm, conc,
 * then per reserved key i (2 each): rpm sum, tpm sum, then per reserved key i
 * (3 each): TPD bucket index, bucket tokens, sum (the caller read the record
 * to name them; the script re-reads it atomically).
 * ARGV: reservationId, actualTokens, cancelled (1/0).
 * The tpm entry of the reservation is rewritten to the actual tokens at its
 * original time; an overrun whose entry already left the window is charged now.
 * The TPD bucket the reservation charged (record field b) is corrected by
 * actual − estimate the same way (an expired bucket: an overrun is charged to now's).
 * Cancelled: the request and token entries are removed.
 * A lease's record (l > 0) settles with ARGV[4] requests used and ARGV[5] ms
 * from its grant (g) to the last use: its rpm entry shrinks to the used
 * requests and both entries are re-stamped at g + min(ARGV[5], l), never later
 * than they were; the unused requests leave the admitted counter (the last n
 * KEYS, one per reserved key).
 * Returns {found, tokensReturned, tokensOverrun, then the names ("<kind>:<id>") of
 * the keys whose concurrency slot it freed}.
 */
export const SETTLE_LUA = `${PRELUDE}
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return {0, 0, 0} end
local h = {}
for i = 1, #rec, 2 do h[rec[i]] = rec[i + 1] end
local n = tonumber(h.n)
if #KEYS ~= 2 + 9 * n then return redis.error_reply('settle: key count does not match the reservation') end
local now = clock()
local resId = ARGV[1]
redis.call('DEL', KEYS[1])
if h.q == '1' then redis.call('DEL', KEYS[2]) end
local tokens = tonumber(h.tokens)
local requests = tonumber(h.requests)
local cancelled = ARGV[3] == '1'
local actual = tonumber(ARGV[2])
if cancelled then actual = 0 end
local leaseMs = tonumber(h.l or '0')
local used, stamp = requests, 0
if leaseMs > 0 then
  used = tonumber(ARGV[4])
  if cancelled then used = 0 end
  if used > requests then used = requests end
  stamp = tonumber(h.g) + math.min(tonumber(ARGV[5]), leaseMs)
end
local freed = {}
for i = 1, n do
  local k = 2 + (i - 1) * 3
  local sums = 2 + 3 * n + 2 * (i - 1)
  local rpm, tpm = tonumber(h['r' .. i]), tonumber(h['t' .. i])
  if leaseMs > 0 then
    if tpm > 0 then
      wsum(KEYS[k + 2], KEYS[sums + 2], now)
      local ts = wdel(KEYS[k + 2], KEYS[sums + 2], resId .. ':' .. num(tokens))
      if ts then
        wadd(KEYS[k + 2], KEYS[sums + 2], resId, math.min(ts, stamp), actual, now)
      elseif actual > tokens then
        wadd(KEYS[k + 2], KEYS[sums + 2], resId .. '-over', now, actual - tokens, now)
      end
    end
    if rpm > 0 then
      wsum(KEYS[k + 1], KEYS[sums + 1], now)
      local ts = wdel(KEYS[k + 1], KEYS[sums + 1], resId .. ':' .. num(requests))
      if ts then wadd(KEYS[k + 1], KEYS[sums + 1], resId, math.min(ts, stamp), used, now) end
    end
    if used < requests then redis.call('INCRBY', KEYS[2 + 8 * n + i], used - requests) end
  elseif tpm > 0 and actual ~= tokens then
    wsum(KEYS[k + 2], KEYS[sums + 2], now)
    local ts = wdel(KEYS[k + 2], KEYS[sums + 2], resId .. ':' .. num(tokens))
    if ts then
      wadd(KEYS[k + 2], KEYS[sums + 2], resId, ts, actual, now)
    elseif actual > tokens then
      wadd(KEYS[k + 2], KEYS[sums + 2], resId .. '-over', now, actual - tokens, now)
    end
  end
  local tpd = tonumber(h['d' .. i] or '0')
  if tpd > 0 and actual ~= tokens then
    local dk = 2 + 5 * n + 3 * (i - 1)
    dsum(KEYS[dk + 1], KEYS[dk + 2], KEYS[dk + 3], now)
    if not dfix(KEYS[dk + 1], KEYS[dk + 2], KEYS[dk + 3], tonumber(h.b), actual - tokens, now) and actual > tokens then
      dadd(KEYS[dk + 1], KEYS[dk + 2], KEYS[dk + 3], math.floor(now / B), actual - tokens, now)
    end
  end
  if rpm > 0 and cancelled and leaseMs == 0 then
    wsum(KEYS[k + 1], KEYS[sums + 1], now)
    wdel(KEYS[k + 1], KEYS[sums + 1], resId .. ':' .. num(requests))
  end
  if tonumber(h['c' .. i]) > 0 and redis.call('ZREM', KEYS[k + 3], resId) == 1 then freed[#freed + 1] = h['k' .. i] end
end
local returned, overrun = 0, 0
if actual < tokens then returned = tokens - actual else overrun = actual - tokens end
local out = {1, returned, overrun}
for _, name in ipairs(freed) do out[#out + 1] = name end
return out
`;

/**
 * KEYS: cool, epoch, status. ARGV: ms. A longer cooldown already in force is kept.
 * The status hash (state, until) is what RECOVER_LUA later closes with a RECOVERED event.
 * Returns {until, changed, epoch, now}.
 */
export const COOLDOWN_LUA = `${PRELUDE}
local now = clock()
local ms = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local untilMs = now + ms
if current >= untilMs then
  return {current, 0, tonumber(redis.call('GET', KEYS[2]) or '0'), now}
end
redis.call('SET', KEYS[1], num(untilMs), 'PX', ms)
redis.call('HSET', KEYS[3], 'state', 'cooldown', 'until', num(untilMs))
return {untilMs, 1, redis.call('INCR', KEYS[2]), now}
`;

/**
 * KEYS: status, epoch. ARGV: untilMs (Redis time). A key found exhausted by an
 * Acquire: the first report opens an "exhausted" status (epoch bump, the caller
 * publishes EXHAUSTED); later reports only extend its until.
 * Returns {changed, epoch, now, until}.
 */
export const EXHAUSTED_LUA = `${PRELUDE}
local now = clock()
local untilMs = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
local cur = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if state then
  if untilMs > cur then redis.call('HSET', KEYS[1], 'until', num(untilMs)) else untilMs = cur end
  return {0, tonumber(redis.call('GET', KEYS[2]) or '0'), now, untilMs}
end
redis.call('HSET', KEYS[1], 'state', 'exhausted', 'until', num(untilMs))
return {1, redis.call('INCR', KEYS[2]), now, untilMs}
`;

/**
 * KEYS: status, epoch, cool, unavail. Closes an exhausted / cooldown status
 * once it is over (its until passed — for 'exhausted' that is when the denied
 * cost fits again — no cooldown in force, the key not unavailable). Exactly one
 * caller wins (epoch bump → the caller publishes RECOVERED).
 * Returns {recovered, epoch, now, untilIfStillPending}.
 */
export const RECOVER_LUA = `${PRELUDE}
local now = clock()
local state = redis.call('HGET', KEYS[1], 'state')
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
if not state then return {0, epoch, now, 0} end
local untilMs = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local cool = tonumber(redis.call('GET', KEYS[3]) or '0')
if cool > untilMs then untilMs = cool end
if redis.call('EXISTS', KEYS[4]) == 1 then return {0, epoch, now, 0} end
if untilMs > now then return {0, epoch, now, untilMs} end
redis.call('DEL', KEYS[1])
return {1, redis.call('INCR', KEYS[2]), now, 0}
`;

/**
 * KEYS: rpm, tpm, rpm sum, tpm sum. ARGV: rpm limit, rpm remaining, tpm limit,
 * tpm remaining (-1 = not reported), then per dimension the provider's reset
 * (ms epoch, 0 = unknown). The provider says it has only `remaining` left: add
 * a synthetic entry so our remaining is no more than that, timed to leave the
 * window at the provider's reset (or a window from now). Never lowers usage.
 * Returns {rpmTightened, tpmTightened, now}.
 */
export const TIGHTEN_LUA = `${PRELUDE}
local now = clock()
local out = {0, 0, now}
for d = 1, 2 do
  local limit, remaining = tonumber(ARGV[2 * d - 1]), tonumber(ARGV[2 * d])
  local reset = tonumber(ARGV[4 + d])
  if limit > 0 and remaining >= 0 then
    if remaining > limit then remaining = limit end
    local sum = wsum(KEYS[d], KEYS[d + 2], now)
    local missing = (limit - remaining) - sum
    if missing > 0 then
      local ts = now
      if reset > now and reset - W < now then ts = reset - W end
      wadd(KEYS[d], KEYS[d + 2], 'provider-' .. num(now) .. '-' .. d, ts, missing, now)
      out[d] = 1
    end
  end
end
return out
`;

/** KEYS: unavail, epoch. ARGV: 1 to mark, 0 to clear. Returns {changed, epoch, now}. */
export const UNAVAILABLE_LUA = `${PRELUDE}
local now = clock()
local want = ARGV[1] == '1'
local has = redis.call('EXISTS', KEYS[1]) == 1
if want == has then return {0, tonumber(redis.call('GET', KEYS[2]) or '0'), now} end
if want then redis.call('SET', KEYS[1], num(now)) else redis.call('DEL', KEYS[1]) end
return {1, redis.call('INCR', KEYS[2]), now}
`;

/**
 * KEYS: rpm, tpm, conc, cool, unavail, epoch, admitted, rpm sum, tpm sum, tpd
 * bucket index, tpd bucket tokens, tpd sum.
 * Returns {now, rpm used, rpm oldest ts, rpm newest ts, tpm used, oldest, newest,
 * conc live count, next conc expiry, cool, unavail, epoch, admitted, tpd used,
 * when the newest tpd bucket expires (0: none)}.
 */
export const STATE_LUA = `${PRELUDE}
local now = clock()
local out = {now}
for k = 1, 2 do
  out[#out + 1] = wsum(KEYS[k], KEYS[k + 7], now)
  local first = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
  local last = redis.call('ZRANGE', KEYS[k], -1, -1, 'WITHSCORES')
  out[#out + 1] = tonumber(first[2] or '0')
  out[#out + 1] = tonumber(last[2] or '0')
end
out[#out + 1] = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
local first = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
out[#out + 1] = tonumber(first[2] or '0')
out[#out + 1] = tonumber(redis.call('GET', KEYS[4]) or '0')
out[#out + 1] = redis.call('EXISTS', KEYS[5])
out[#out + 1] = tonumber(redis.call('GET', KEYS[6]) or '0')
out[#out + 1] = tonumber(redis.call('GET', KEYS[7]) or '0')
out[#out + 1] = dsum(KEYS[10], KEYS[11], KEYS[12], now)
local newest = redis.call('ZRANGE', KEYS[10], -1, -1, 'WITHSCORES')[2]
out[#out + 1] = newest and dexpiry(tonumber(newest)) or 0
return out
`;
