/**
 * Lua scripts of the Redis HealthStore. They mirror domain/circuit.ts rule for
 * rule (the contract suite runs the same assertions against both); keep the
 * two in step.
 *
 * Keys of one script share the `{deployment}` hash tag:
 *   KEYS[1] sy:brk:{dep}:circuit   hash: the CircuitRecord
 *   KEYS[2] sy:brk:{dep}:probe     string "<expiresAtMs>|<holder>" with PX = ttl
 *   KEYS[3] sy:brk:{dep}:ev:<id>   de-duplication marker of one outcome (record only)
 * Common ARGV: [1] now override in ms ('' = Redis TIME, production),
 *   [2] consecutiveFailures, [3] openMs, [4] windowSize, [5] deployment,
 *   [6] provider, [7] model. Every script returns one JSON document.
 */

const PRELUDE = `
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local THRESHOLD = tonumber(ARGV[2])
local OPEN_MS = tonumber(ARGV[3])
local WINDOW = tonumber(ARGV[4])

local function new_circuit(now)
  return { deployment = ARGV[5], provider = ARGV[6], model = ARGV[7], state = 'CLOSED', cf = 0, ou = 0,
    forced = false, reopen = 0, epoch = 0, win = '', lec = '', lat = 0, upd = now }
end

local function load()
  local h = redis.call('HGETALL', KEYS[1])
  if #h == 0 then return nil end
  local f = {}
  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
  return { deployment = f.deployment, provider = f.provider, model = f.model, state = f.state,
    cf = tonumber(f.cf), ou = tonumber(f.ou), forced = f.forced == '1', reopen = tonumber(f.reopen),
    epoch = tonumber(f.epoch), win = f.win or '', lec = f.lec or '', lat = tonumber(f.lat), upd = tonumber(f.upd) }
end

local function save(r)
  redis.call('HSET', KEYS[1], 'deployment', r.deployment, 'provider', r.provider, 'model', r.model,
    'state', r.state, 'cf', r.cf, 'ou', string.format('%d', r.ou), 'forced', r.forced and '1' or '0',
    'reopen', r.reopen, 'epoch', string.format('%d', r.epoch), 'win', r.win, 'lec', r.lec,
    'lat', string.format('%.17g', r.lat), 'upd', string.format('%d', r.upd))
end

local function failure_rate(r)
  local n = string.len(r.win)
  if n == 0 then return 0 end
  local _, failures = string.gsub(r.win, '1', '')
  return failures / n
end

local function effective(r, now)
  if r.state == 'OPEN' and not r.forced and r.ou > 0 and now >= r.ou then return 'HALF_OPEN' end
  return r.state
end

-- Mutates r; returns the transition.
local function transition_to(r, to, reason, now, forced, ou)
  local from = r.state
  r.state = to; r.ou = ou; r.forced = forced; r.epoch = r.epoch + 1; r.upd = now
  return { deployment = r.deployment, from = from, to = to, reason = reason, forced = forced,
    epoch = r.epoch, openUntil = ou, failureRate = failure_rate(r), at = now }
end

local function observe(r, now)
  if r.state == 'OPEN' and effective(r, now) == 'HALF_OPEN' then
    return transition_to(r, 'HALF_OPEN', 'open interval elapsed', now, false, 0)
  end
  return nil
end

local function record_json(r)
  return { deployment = r.deployment, provider = r.provider, model = r.model, state = r.state,
    consecutiveFailures = r.cf, openUntil = r.ou, forced = r.forced, reopenCount = r.reopen, epoch = r.epoch,
    window = r.win, lastErrorClass = r.lec, latencyEwmaMs = r.lat, updatedAt = r.upd }
end

-- Persists a step; any transition ends the current probe permit.
local function commit(r, tr, now, extra)
  save(r)
  if tr then redis.call('DEL', KEYS[2]) end
  local out = extra or {}
  out.record = record_json(r); out.transition = tr; out.now = now
  return cjson.encode(out)
end
`;

/** ARGV[8] error class ('' = success), [9] latency ms, [10] dedup ttl ms. KEYS[3] = event marker ('' key name when no event id). */
export const RECORD_SCRIPT = `${PRELUDE}
local FAILURES = { OVERLOADED = true, SERVER_ERROR = true, TIMEOUT = true, NETWORK = true }
local now = now_ms()
local r = load() or new_circuit(now)
if ARGV[11] == '1' then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', tonumber(ARGV[10])) then
    return commit(r, observe(r, now), now, { duplicate = true })
  end
end
local observed = observe(r, now)
local cls = ARGV[8]
local latency = tonumber(ARGV[9])
r.upd = now
if latency > 0 then
  if r.lat == 0 then r.lat = latency else r.lat = r.lat + 0.2 * (latency - r.lat) end
end
if cls ~= '' then r.lec = cls end
local kind = 'neutral'
if cls == '' then kind = 'success' elseif FAILURES[cls] then kind = 'failure' end
if kind == 'neutral' then return commit(r, observed, now, { duplicate = false }) end

r.win = string.sub(r.win .. (kind == 'failure' and '1' or '0'), -WINDOW)
if kind == 'failure' then r.cf = r.cf + 1 else r.cf = 0 end
if r.forced then return commit(r, observed, now, { duplicate = false }) end

local tr = nil
if r.state == 'CLOSED' and kind == 'failure' and r.cf >= THRESHOLD then
  tr = transition_to(r, 'OPEN', string.format('%d consecutive failures', r.cf), now, false, now + OPEN_MS)
elseif r.state == 'HALF_OPEN' and kind == 'failure' then
  tr = transition_to(r, 'OPEN', 'probe failed', now, false, now + OPEN_MS)
  r.reopen = r.reopen + 1
elseif r.state == 'HALF_OPEN' and kind == 'success' then
  tr = transition_to(r, 'CLOSED', 'probe succeeded', now, false, 0)
  r.reopen = 0
end
if tr and observed then tr.from = observed.from end
return commit(r, tr or observed, now, { duplicate = false })
`;

/** Read (materialising a due OPEN→HALF_OPEN). Returns {} for an unknown deployment. */
export const OBSERVE_SCRIPT = `${PRELUDE}
local now = now_ms()
local r = load()
if not r then return cjson.encode({ now = now }) end
return commit(r, observe(r, now), now)
`;

/** ARGV[8] target state ('' = keep current), [9] '1' = release, [10] reason. */
export const FORCE_SCRIPT = `${PRELUDE}
local now = now_ms()
local r = load() or new_circuit(now)
local observed = observe(r, now)
local target = ARGV[8]
if target == '' then target = r.state end
local forced = ARGV[9] ~= '1'
local reason = ARGV[10]
if reason == '' then
  if forced then reason = 'operator override' else reason = 'operator released override' end
end
local ou = 0
if target == 'OPEN' and not forced then ou = now + OPEN_MS end
local function clear()
  if target == 'CLOSED' then r.cf = 0; r.win = ''; r.reopen = 0 end
end
if target == r.state then
  if r.forced == forced and r.ou == ou and target ~= 'CLOSED' then return commit(r, observed, now) end
  clear()
  r.forced = forced; r.ou = ou; r.epoch = r.epoch + 1; r.upd = now
  return commit(r, observed, now)
end
clear()
local tr = transition_to(r, target, reason, now, true, ou)
r.forced = forced
if observed then tr.from = observed.from end
return commit(r, tr, now)
`;

/** ARGV[8] holder id, [9] ttl ms. */
export const PROBE_SCRIPT = `${PRELUDE}
local now = now_ms()
local r = load()
if not r then return cjson.encode({ granted = false, holderId = '', expiresAt = 0, state = 'CLOSED', now = now }) end
local tr = observe(r, now)
if tr then save(r); redis.call('DEL', KEYS[2]) end
local state = effective(r, now)
local out = { granted = false, holderId = '', expiresAt = 0, state = state, now = now, record = record_json(r), transition = tr }
if state ~= 'HALF_OPEN' then return cjson.encode(out) end
local held = redis.call('GET', KEYS[2])
if held then
  local sep = string.find(held, '|', 1, true)
  local exp = tonumber(string.sub(held, 1, sep - 1))
  local holder = string.sub(held, sep + 1)
  if exp > now and holder ~= ARGV[8] then
    out.holderId = holder; out.expiresAt = exp
    return cjson.encode(out)
  end
end
local ttl = tonumber(ARGV[9])
local exp = now + ttl
redis.call('SET', KEYS[2], string.format('%d', exp) .. '|' .. ARGV[8], 'PX', ttl)
out.granted = true; out.holderId = ARGV[8]; out.expiresAt = exp
return cjson.encode(out)
`;
