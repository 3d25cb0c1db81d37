-- ratelimit.lua: add one worker's batch of event counts to the shared per-second buckets,
-- block the sources over their limits, release expired blocks, and answer the block-list
-- changes the caller has not seen yet.
--
-- KEYS[1]  meta hash        fr:{rl}:meta      fields seq (last change number), floor
-- KEYS[2]  blocks hash      fr:{rl}:blocks    source -> reason
-- KEYS[3]  until zset       fr:{rl}:until     source -> block-until ms
-- KEYS[4]  journal zset     fr:{rl}:journal   source -> change number of its last change
-- KEYS[4+i] counter hash    fr:{rl}:c:<kind>:<dimension>:<key>, one per batch entry i
--           fields <second> count, n last second, t sum of the window's seconds before
--           n (the window total is t + <n>), o first second,
--           b raw EWMA of events/s over seconds o .. n-2 (read bias-corrected:
--           b / (1 - (1-a)^(n-1-o)))
--
-- ARGV[1]  now ms, or "" to use the server's TIME
-- ARGV[2]  caller's last seen change number (-1: never synced, send a full snapshot)
-- ARGV[3]  TTL ms of the four shared keys (longer than any block)
-- ARGV[4]  journal cap (entries)
-- ARGV[5]  max releases per call
-- ARGV[6]  warm-up seconds: no spike verdict on a source with less history than this
-- ARGV[7]  L, the number of limit rows, then L rows of 8: window_s, max_events,
--          spike_factor, spike_min, block_ms, alpha, keep_s, skip (the length of
--          "fr:{rl}:c:<kind>:": what follows it in KEYS[4+i] is the source)
-- ARGV[8+8L] the batch: "<limit row> <count> " per entry i, in KEYS order; count is
--          negative when the caller has the source blocked (its baseline stays put)
--
-- The batch travels as one string: a RESP argument per entry costs ~1 us to encode in
-- redis-py, more than the script's own work on it.
--
-- Returns {seq, reset, changes, made, released, now_ms}:
--   changes  flat {source, reason ("" = released), until_ms} since ARGV[2], or, when
--            reset = 1, every current block (the caller replaces its set)
--   made     flat {limit row, source, reason, until_ms}: blocks this call created
--
-- Everything is validated before the first write. All keys share the hash tag {rl}.

local function num(v)
  local n = tonumber(v)
  if n == nil then error('ratelimit.lua: bad numeric argument') end
  return n
end
local function fmt(n) return string.format('%d', n) end

local now_ms
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now_ms = num(ARGV[1])
end
local last_seq = num(ARGV[2])
local state_ttl = num(ARGV[3])
local journal_max = num(ARGV[4])
local release_max = num(ARGV[5])
local warmup = num(ARGV[6])
local nlimits = num(ARGV[7])
local limits = {}
local p = 8
for i = 1, nlimits do
  limits[i] = {
    row = i,
    window = num(ARGV[p]), max = num(ARGV[p + 1]), factor = num(ARGV[p + 2]),
    smin = num(ARGV[p + 3]), block_ms = num(ARGV[p + 4]), alpha = num(ARGV[p + 5]),
    keep = num(ARGV[p + 6]), skip = num(ARGV[p + 7]),
  }
  p = p + 8
end
local nentries = #KEYS - 4
local rows, counts = {}, {}
for row, count in string.gmatch(ARGV[p] or '', '(%d+) (-?%d+) ') do
  rows[#rows + 1] = limits[tonumber(row)]
  counts[#counts + 1] = tonumber(count)
  if rows[#rows] == nil or counts[#counts] == 0 then
    return redis.error_reply('ERR ratelimit.lua: bad batch entry')
  end
end
if #ARGV ~= p or #rows ~= nentries then
  return redis.error_reply('ERR ratelimit.lua: the batch does not match KEYS')
end

local meta, blocks, until_key, journal = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local m = redis.call('HMGET', meta, 'seq', 'floor')
local pre_seq = tonumber(m[1]) or 0
local floor = tonumber(m[2]) or 0
local seq = pre_seq
local made = {}

-- Fold one completed second of x events into the raw EWMA b that holds k seconds. While
-- the source is blocked, and for a second that was itself a spike, fold the current
-- estimate instead: that leaves the estimate unchanged, so abuse never becomes "normal".
local function fold(L, b, k, x, frozen)
  local a = L.alpha
  if k > 0 then
    local est = b / (1 - (1 - a) ^ k)
    if frozen or (k >= warmup and x >= L.smin and x >= L.factor * est) then x = est end
  end
  return (1 - a) * b + a * x
end

local now_s = math.floor(now_ms / 1000)
local now_frac = (now_ms % 1000) / 1000
local S0, S1, S2 = fmt(now_s), fmt(now_s - 1), fmt(now_s - 2)
for _, L in ipairs(limits) do L.leaving = fmt(now_s - L.window) end

for i = 1, nentries do
  local key = KEYS[4 + i]
  local L = rows[i]
  local source = string.sub(key, L.skip + 1)
  local count = counts[i]
  local frozen = count < 0  -- the caller has the source blocked: learn no baseline
  if frozen then count = -count end
  local s, frac, W = now_s, now_frac, L.window

  local h = redis.call('HMGET', key, 'n', 't', 'b', 'o', S0, S1, S2, L.leaving)
  local n, t, b, o = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4])
  local cur, prev = 0, 0

  if n == nil then
    -- New source (or its hash expired): history starts now.
    o, t, b = s, 0, 0
    redis.call('HSET', key, S0, count, 't', 0, 'n', S0, 'o', S0, 'b', 0)
    redis.call('EXPIRE', key, L.keep)
  elseif n >= s then
    -- Same second as the source's latest. A worker whose clock is behind counts in that
    -- second too, so per-source time never runs backwards.
    if n > s then
      s, frac = n, 0.999
      h = redis.call('HMGET', key, fmt(s), fmt(s - 1))
      cur, prev = tonumber(h[1]) or 0, tonumber(h[2]) or 0
    else
      cur, prev = tonumber(h[5]) or 0, tonumber(h[6]) or 0
    end
    redis.call('HINCRBY', key, fmt(s), count)
  else
    -- Time moved on since second n. The baseline lags one completed second behind, as
    -- the rate it is compared with spans the last two seconds: it holds o .. n-2 and now
    -- takes n-1, n and the silent seconds after, up to s-2. Then the buckets that left
    -- the window go.
    local c1, c0  -- events in seconds n-1 and n
    if n == s - 1 then
      c0, c1 = tonumber(h[6]) or 0, tonumber(h[7]) or 0
    else
      local c = redis.call('HMGET', key, fmt(n - 1), fmt(n))
      c1, c0 = tonumber(c[1]) or 0, tonumber(c[2]) or 0
    end
    local k = math.max(0, n - 1 - o)  -- seconds folded so far
    if n - 1 >= o then b = fold(L, b, k, c1, frozen); k = k + 1 end
    if n <= s - 2 then b = fold(L, b, k, c0, frozen); k = k + 1 end
    local silent = s - 2 - n
    if silent > 0 then
      local a = L.alpha
      if frozen and k > 0 then
        b = b / (1 - (1 - a) ^ k) * (1 - (1 - a) ^ (k + silent))
      else
        b = b * (1 - a) ^ silent
      end
    end
    -- t holds the window's completed seconds: it gains second n, loses what left.
    local lo, hi = n - W + 1, math.min(n, s - W)
    if hi < lo then
      t = t + c0
    else
      local fields = {}
      for sec = lo, hi do fields[#fields + 1] = fmt(sec) end
      if hi == n then
        t = 0  -- the whole window left
      elseif lo == hi then
        t = t + c0 - (tonumber(h[8]) or 0)  -- one second left: the common case
      else
        local old = redis.call('HMGET', key, unpack(fields))
        t = t + c0
        for j = 1, #old do t = t - (tonumber(old[j]) or 0) end
      end
      redis.call('HDEL', key, unpack(fields))
    end
    redis.call('HSET', key, S0, count, 't', fmt(t), 'n', S0, 'o', fmt(o),
      'b', string.format('%.17g', b))
    redis.call('EXPIRE', key, L.keep)
    if n == s - 1 then prev = c0 end
  end
  cur = cur + count
  local total = t + cur

  local reason = nil
  if total > L.max then
    reason = 'rate_limited'
  else
    local k = s - 1 - o  -- seconds in the baseline
    if k >= warmup then
      local rate = cur + prev * (1 - frac)
      local est = b / (1 - (1 - L.alpha) ^ k)
      -- est carries float rounding: let exactly factor x the baseline count as a spike.
      if rate >= L.smin and rate >= L.factor * est * (1 - 1e-9) then reason = 'traffic_spike' end
    end
  end
  if reason then
    local until_ms = tonumber(redis.call('ZSCORE', until_key, source))
    local new_until = now_ms + L.block_ms
    if until_ms then
      -- Already blocked (perhaps expired but not yet released): keep the first reason,
      -- extend the block while the source stays over its limits.
      redis.call('ZADD', until_key, 'GT', fmt(new_until), source)
    else
      redis.call('HSET', blocks, source, reason)
      redis.call('ZADD', until_key, fmt(new_until), source)
      seq = seq + 1
      redis.call('ZADD', journal, fmt(seq), source)
      made[#made + 1] = L.row
      made[#made + 1] = source
      made[#made + 1] = reason
      made[#made + 1] = new_until
    end
  end
end

-- Release blocks whose time is up. A source still over its limits had its block extended
-- above, so what expires here has been under its limits for at least block_s.
local expired = redis.call('ZRANGEBYSCORE', until_key, '-inf', fmt(now_ms), 'LIMIT', 0, release_max)
for _, source in ipairs(expired) do
  redis.call('ZREM', until_key, source)
  redis.call('HDEL', blocks, source)
  seq = seq + 1
  redis.call('ZADD', journal, fmt(seq), source)
end

if seq ~= pre_seq then
  local size = redis.call('ZCARD', journal)
  if size > journal_max then
    local popped = redis.call('ZPOPMIN', journal, size - journal_max)
    floor = tonumber(popped[#popped])
    redis.call('HSET', meta, 'floor', fmt(floor))
  end
  redis.call('HSET', meta, 'seq', fmt(seq))
end
for _, k in ipairs({meta, blocks, until_key, journal}) do
  redis.call('PEXPIRE', k, state_ttl)
end

local reset = 0
local changes = {}
if last_seq < 0 or last_seq > pre_seq or last_seq < floor then
  -- A new worker, a store that lost its state, or a worker too far behind the journal.
  reset = 1
  local all = redis.call('HGETALL', blocks)
  for j = 1, #all, 2 do
    changes[#changes + 1] = all[j]
    changes[#changes + 1] = all[j + 1]
    changes[#changes + 1] = tonumber(redis.call('ZSCORE', until_key, all[j])) or 0
  end
elseif seq > last_seq then
  local members = redis.call('ZRANGEBYSCORE', journal, '(' .. fmt(last_seq), '+inf')
  for _, source in ipairs(members) do
    local reason = redis.call('HGET', blocks, source)
    changes[#changes + 1] = source
    if reason then
      changes[#changes + 1] = reason
      changes[#changes + 1] = tonumber(redis.call('ZSCORE', until_key, source)) or 0
    else
      changes[#changes + 1] = ''
      changes[#changes + 1] = 0
    end
  end
end

return {seq, reset, changes, made, #expired, now_ms}
