import { errorClassesWhere } from '@switchyard/util';

/**
 * Lua scripts of the Redis HealthStore. They mirror domain/circuit.ts rule for
 * rule (the contract suite runs the same assertions against both); keep the
 * two in step. The breaker-failure classes are written in from the one
 * error-class table (@switchyard/util).
 *
 * Keys of one script share the `{deployment}` hash tag:
 *   KEYS[1] sy:brk:{dep}:circuit   hash: the CircuitRecord
 *   KEYS[2] sy:brk:{dep}:probes    sorted set: probe holder → permit expiry (ms); key expires with the latest
 *   KEYS[3] sy:brk:{dep}:ev:<id>   de-duplication marker of one outcome (record only)
 * Common ARGV: [1] now override in ms ('' = Redis TIME, production),
 *   [2] consecutiveFailures, [3] openMs, [4] windowMs, [5] deployment,
 *   [6] provider, [7] model, [8] failureRateThreshold, [9] minimumCalls,
 *   [10] slow-call ms for this deployment (0 = off), [11] slowCallRateThreshold,
 *   [12] maxOpenMs, [13] healthyResetMs, [14] halfOpenProbes.
 * Script-specific ARGV start at 15. Every script returns one JSON document.
 */

export const COMMON_ARGS = 14;

const PRELUDE = `
local function now_ms()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local THRESHOLD = tonumber(ARGV[2])
local OPEN_MS = tonumber(ARGV[3])
local WINDOW_MS = tonumber(ARGV[4])
local RATE = tonumber(ARGV[8])
local MIN_CALLS = tonumber(ARGV[9])
local SLOW_MS = tonumber(ARGV[10])
local SLOW_RATE = tonumber(ARGV[11])
local MAX_OPEN_MS = tonumber(ARGV[12])
local HEALTHY_MS = tonumber(ARGV[13])
local PROBES = tonumber(ARGV[14])
local BUCKETS = 60
local BUCKET_MS = math.max(1, math.ceil(WINDOW_MS / BUCKETS))
local ALPHA = 0.2

local function new_circuit(now)
  return { deployment = ARGV[5], provider = ARGV[6], model = ARGV[7], state = 'CLOSED', cf = 0, ou = 0,
    forced = false, reopen = 0, epoch = 0, win = '', lec = '', lat = 0, var = 0, hs = 0, ca = 0, upd = now }
end

local function load()
  local h = redis.call('HGETALL', KEYS[1])
  if #h == 0 then return nil end
  local f = {}
  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
  return { deployment = f.deployment, provider = f.provider, model = f.model, state = f.state,
    cf = tonumber(f.cf), ou = tonumber(f.ou), forced = f.forced == '1', reopen = tonumber(f.reopen),
    epoch = tonumber(f.epoch), win = f.win or '', lec = f.lec or '', lat = tonumber(f.lat),
    var = tonumber(f.var or '0'), hs = tonumber(f.hs or '0'), ca = tonumber(f.ca or '0'), upd = tonumber(f.upd) }
end

local function save(r)
  redis.call('HSET', KEYS[1], 'deployment', r.deployment, 'provider', r.provider, 'model', r.model,
    'state', r.state, 'cf', r.cf, 'ou', string.format('%d', r.ou), 'forced', r.forced and '1' or '0',
    'reopen', r.reopen, 'epoch', string.format('%d', r.epoch), 'win', r.win, 'lec', r.lec,
    'lat', string.format('%.17g', r.lat), 'var', string.format('%.17g', r.var), 'hs', r.hs,
    'ca', string.format('%d', r.ca), 'upd', string.format('%d', r.upd))
end

-- Window: 'index:calls:failures:slow' buckets joined by ',' (same text as domain/circuit.ts).
local function parse_window(w)
  local out = {}
  for b in string.gmatch(w, '[^,]+') do
    local i, c, f, s = string.match(b, '^(%d+):(%d+):(%d+):(%d+)$')
    -- Anything else (e.g. the count-based '0101' window of earlier versions) is dropped.
    if i then out[#out + 1] = { tonumber(i), tonumber(c), tonumber(f), tonumber(s) } end
  end
  return out
end

local function format_window(bs)
  local parts = {}
  for k = 1, #bs do
    local b = bs[k]
    parts[k] = string.format('%d:%d:%d:%d', b[1], b[2], b[3], b[4])
  end
  return table.concat(parts, ',')
end

local function trim_window(w, now)
  local oldest = math.floor(now / BUCKET_MS) - BUCKETS + 1
  local bs = parse_window(w)
  local kept = {}
  for k = 1, #bs do if bs[k][1] >= oldest then kept[#kept + 1] = bs[k] end end
  if #kept == #bs then return w end
  return format_window(kept)
end

local function stats(r)
  local calls, failures, slow = 0, 0, 0
  for _, b in ipairs(parse_window(r.win)) do calls = calls + b[2]; failures = failures + b[3]; slow = slow + b[4] end
  return calls, failures, slow
end

local function failure_rate(r)
  local calls, failures = stats(r)
  if calls == 0 then return 0 end
  return failures / calls
end

local function effective(r, now)
  if r.state == 'OPEN' and not r.forced and r.ou > 0 and now >= r.ou then return 'HALF_OPEN' end
  return r.state
end

local function open_duration(n)
  return math.min(MAX_OPEN_MS, OPEN_MS * math.pow(2, math.min(n, 30)))
end

-- Mutates r; returns the transition.
local function transition_to(r, to, reason, now, forced, ou)
  local from = r.state
  r.state = to; r.ou = ou; r.forced = forced; r.epoch = r.epoch + 1; r.upd = now
  return { deployment = r.deployment, from = from, to = to, reason = reason, forced = forced,
    epoch = r.epoch, openUntil = ou, failureRate = failure_rate(r), at = now }
end

local function observe(r, now)
  r.win = trim_window(r.win, now)
  if r.state == 'OPEN' and effective(r, now) == 'HALF_OPEN' then
    local tr = transition_to(r, 'HALF_OPEN', 'open interval elapsed', now, false, 0)
    r.hs = 0
    return tr
  end
  return nil
end

local function record_json(r)
  return { deployment = r.deployment, provider = r.provider, model = r.model, state = r.state,
    consecutiveFailures = r.cf, openUntil = r.ou, forced = r.forced, reopenCount = r.reopen, epoch = r.epoch,
    window = r.win, lastErrorClass = r.lec, latencyEwmaMs = r.lat, latencyVarMs2 = r.var,
    halfOpenSuccesses = r.hs, closedAt = r.ca, updatedAt = r.upd }
end

-- Persists a step; any transition ends the current probe permits.
local function commit(r, tr, now, extra)
  save(r)
  if tr then redis.call('DEL', KEYS[2]) end
  local out = extra or {}
  out.record = record_json(r); out.transition = tr; out.now = now
  return cjson.encode(out)
end
`;

/** The breaker-failure classes as a Lua set, written from the one error-class table so the script cannot drift from it. */
const FAILURES = `local FAILURES = { ${errorClassesWhere('countsTowardBreaker')
  .map((c) => `${c} = true`)
  .join(', ')} }`;

/**
 * One outcome applied to the loaded record \`r\` at \`now\` (not saved):
 * returns the decision's transition (or nil), the OPEN→HALF_OPEN observed
 * just before it (or nil), and whether \`event_key\` (nil = no event id) was
 * already seen. Shared by the single and the batch script so they cannot differ.
 */
const APPLY_OUTCOME = `
${FAILURES}
local function apply_outcome(r, now, cls, latency, event_key, ttl)
if event_key then
  if not redis.call('SET', event_key, '1', 'NX', 'PX', ttl) then
    return nil, observe(r, now), true
  end
end
local observed = observe(r, now)
r.upd = now
if latency > 0 then
  if r.lat == 0 then
    r.lat = latency
  else
    local d = latency - r.lat
    r.lat = r.lat + ALPHA * d
    r.var = (1 - ALPHA) * (r.var + ALPHA * d * d)
  end
end
if cls ~= '' then r.lec = cls end
local kind = 'neutral'
if cls == '' then kind = 'success' elseif FAILURES[cls] then kind = 'failure' end
if kind == 'neutral' then return nil, observed, false end

local slow = SLOW_MS > 0 and latency > SLOW_MS
local index = math.floor(now / BUCKET_MS)
local bs = parse_window(r.win)
local last = bs[#bs]
if not last or last[1] ~= index then last = { index, 0, 0, 0 }; bs[#bs + 1] = last end
last[2] = last[2] + 1
if kind == 'failure' then last[3] = last[3] + 1 end
if slow then last[4] = last[4] + 1 end
r.win = format_window(bs)
if kind == 'failure' then r.cf = r.cf + 1 else r.cf = 0 end
if r.forced then return nil, observed, false end

local function pct(x) return string.format('%d%%', math.floor(x * 100 + 0.5)) end
local function open(reason, reopen)
  local t = transition_to(r, 'OPEN', reason, now, false, now + open_duration(reopen))
  r.reopen = reopen; r.hs = 0
  return t
end

local tr = nil
if r.state == 'CLOSED' then
  local reason = nil
  local calls, failures, slows = stats(r)
  local secs = string.format('%gs', WINDOW_MS / 1000)
  if r.cf >= THRESHOLD then
    reason = string.format('%d consecutive failures', r.cf)
  elseif calls >= MIN_CALLS and failures / calls >= RATE then
    reason = 'failure rate ' .. pct(failures / calls) .. string.format(' over %d calls in ', calls) .. secs
  elseif calls >= MIN_CALLS and SLOW_MS > 0 and slows / calls >= SLOW_RATE then
    reason = 'slow-call rate ' .. pct(slows / calls) .. string.format(' (over %dms) over %d calls in ', SLOW_MS, calls) .. secs
  end
  if reason then
    local reopen = 0
    if r.ca > 0 and now - r.ca < HEALTHY_MS then reopen = r.reopen + 1 end
    tr = open(reason, reopen)
  end
elseif r.state == 'HALF_OPEN' and kind == 'failure' then
  tr = open('probe failed', r.reopen + 1)
elseif r.state == 'HALF_OPEN' and kind == 'success' then
  r.hs = r.hs + 1
  if r.hs >= PROBES then
    local reason = 'probe succeeded'
    if r.hs > 1 then reason = string.format('%d probes succeeded', r.hs) end
    r.win = ''; r.cf = 0; r.hs = 0; r.ca = now
    tr = transition_to(r, 'CLOSED', reason, now, false, 0)
  end
end
return tr, observed, false
end
`;

/** ARGV[15] error class ('' = success), [16] latency ms, [17] dedup ttl ms, [18] '1' = has event id (KEYS[3]). */
export const RECORD_SCRIPT = `${PRELUDE}
${APPLY_OUTCOME}
local now = now_ms()
local r = load() or new_circuit(now)
local event_key = nil
if ARGV[18] == '1' then event_key = KEYS[3] end
local tr, observed, duplicate = apply_outcome(r, now, ARGV[15], tonumber(ARGV[16]), event_key, tonumber(ARGV[17]))
-- Observed OPEN→HALF_OPEN plus a decision: two transitions, both reported.
local extra = { duplicate = duplicate }
if tr and observed then extra.observed = observed end
return commit(r, tr or observed, now, extra)
`;

/**
 * Several outcomes of one deployment in one call, applied in order exactly as
 * RECORD_SCRIPT applies each (same instant for all): one load, one save.
 * KEYS[3] is the de-duplication marker prefix \`sy:brk:{dep}:ev:\`: the
 * markers are built from it (same hash slot), since their number varies.
 * ARGV[15] dedup ttl ms, then three per outcome: error class ('' = success),
 * latency ms, event id ('' = none).
 * Returns { record, now, steps }: per outcome { duplicate, transition?,
 * observed?, record? } (the record right after a transition, for its publication).
 */
export const RECORD_BATCH_SCRIPT = `${PRELUDE}
${APPLY_OUTCOME}
local now = now_ms()
local r = load() or new_circuit(now)
local ttl = tonumber(ARGV[15])
local steps = {}
local transitioned = false
for i = 1, (#ARGV - 15) / 3 do
  local a = 15 + (i - 1) * 3
  local event_key = nil
  if ARGV[a + 3] ~= '' then event_key = KEYS[3] .. ARGV[a + 3] end
  local tr, observed, duplicate = apply_outcome(r, now, ARGV[a + 1], tonumber(ARGV[a + 2]), event_key, ttl)
  local step = { duplicate = duplicate }
  if tr or observed then
    transitioned = true
    step.transition = tr or observed
    if tr and observed then step.observed = observed end
    step.record = record_json(r)
  end
  steps[i] = step
end
save(r)
-- Any transition ends the current probe permits (as commit does per call; nothing in between can take one).
if transitioned then redis.call('DEL', KEYS[2]) end
return cjson.encode({ record = record_json(r), now = now, steps = steps })
`;

/** Read (materialising a due OPEN→HALF_OPEN). Returns {} for an unknown deployment. */
export const OBSERVE_SCRIPT = `${PRELUDE}
local now = now_ms()
local r = load()
if not r then return cjson.encode({ now = now }) end
return commit(r, observe(r, now), now)
`;

/** ARGV[15] the epoch consumers hold: a record behind it is lifted above it. Returns {} for an unknown deployment. */
export const RAISE_EPOCH_SCRIPT = `${PRELUDE}
local now = now_ms()
local r = load()
if not r then return cjson.encode({ now = now }) end
local held = tonumber(ARGV[15])
if r.epoch < held then r.epoch = held + 1 end
return commit(r, nil, now)
`;

/** ARGV[15] target state ('' = keep current), [16] '1' = release, [17] reason. */
export const FORCE_SCRIPT = `${PRELUDE}
local now = now_ms()
local r = load() or new_circuit(now)
local observed = observe(r, now)
local target = ARGV[15]
if target == '' then target = r.state end
local forced = ARGV[16] ~= '1'
local reason = ARGV[17]
if reason == '' then
  if forced then reason = 'operator override' else reason = 'operator released override' end
end
local ou = 0
if target == 'OPEN' and not forced then ou = now + open_duration(r.reopen) end
local function clear()
  if target == 'CLOSED' then r.cf = 0; r.win = ''; r.reopen = 0; r.ca = 0; r.hs = 0 end
  if target == 'HALF_OPEN' then r.hs = 0 end
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
local extra = {}
if observed then extra.observed = observed end
return commit(r, tr, now, extra)
`;

/**
 * ARGV[15] holder id, [16] ttl ms, [17] '1' = extend. Up to halfOpenProbes
 * permits at once; a permit is one probe call: its holder asking again is
 * refused (unless extending) until it expires or a transition ends it.
 */
export const PROBE_SCRIPT = `${PRELUDE}
local now = now_ms()
local r = load()
if not r then return cjson.encode({ granted = false, holderId = '', expiresAt = 0, state = 'CLOSED', now = now }) end
local tr = observe(r, now)
if tr then save(r); redis.call('DEL', KEYS[2]) end
local state = effective(r, now)
local out = { granted = false, holderId = '', expiresAt = 0, state = state, now = now, record = record_json(r), transition = tr }
if state ~= 'HALF_OPEN' then return cjson.encode(out) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now))
local holder = ARGV[15]
local held = redis.call('ZSCORE', KEYS[2], holder)
if held and ARGV[17] ~= '1' then
  out.holderId = holder; out.expiresAt = tonumber(held)
  return cjson.encode(out)
end
if not held and redis.call('ZCARD', KEYS[2]) >= PROBES then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  out.holderId = first[1]; out.expiresAt = tonumber(first[2])
  return cjson.encode(out)
end
local exp = now + tonumber(ARGV[16])
redis.call('ZADD', KEYS[2], string.format('%d', exp), holder)
local latest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
-- Relative expiry: script time may be a test clock, not Redis wall time.
redis.call('PEXPIRE', KEYS[2], math.max(1, tonumber(latest[2]) - now))
out.granted = true; out.holderId = holder; out.expiresAt = exp
return cjson.encode(out)
`;
