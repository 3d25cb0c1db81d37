-- lease.lua: a worker reports what it committed from its budget lease and tops it up.
--
-- KEYS[1]  lease hash   pc:{c<id>}:lease   (TTL ARGV[10] s, refreshed on every call)
-- KEYS[2]  spend hash   pc:{c<id>}:spend   (read only; written by bill.lua)
--
-- ARGV[1]  worker        id of the calling worker process
-- ARGV[2]  consumed      micros the worker committed (expected cost of ads it served)
--                        since its last call; moved from its lease into in-flight
-- ARGV[3]  want          micros the worker wants to hold after the call; 0 releases
-- ARGV[4]  daily budget  micros, 0 = no daily limit
-- ARGV[5]  total budget  micros, 0 = no lifetime limit
-- ARGV[6]  day           YYYYMMDD, the campaign's day (its time zone)
-- ARGV[7]  now ms
-- ARGV[8]  lease ttl ms  a lease not renewed within this is presumed lost (worker died)
-- ARGV[9]  window ms     how long committed cost stays in flight (waiting to be billed)
-- ARGV[10] hash ttl s
--
-- Lease hash fields:
--   w:<worker>  "<amount> <expires_ms> <day>"  the worker's unconsumed allowance
--   f:<n>       micros committed in the n-th 10-second span since the epoch, in flight
--   x:<day>     micros committed that day (for pacing visibility)
--
-- The invariant, restored at every call: spent + in_flight + leases <= budget, for the
-- daily and the lifetime budget alike (the caller's lease shrinks if it must). A lease of a dead worker expires into in-flight
-- (presumed committed), so a SIGKILL can delay the budget, never overspend it.
--
-- Returns {held, spent_today, spent_total, in_flight, others, committed_today,
--          impressions_today, clicks_today}; held is the worker's allowance after the call.

local consumed = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local daily = tonumber(ARGV[4])
local total = tonumber(ARGV[5])
local now = tonumber(ARGV[7])
local lease_ttl = tonumber(ARGV[8])
local window = tonumber(ARGV[9])
local hash_ttl = tonumber(ARGV[10])
if not (consumed and want and daily and total and now and lease_ttl and window and hash_ttl)
    or consumed < 0 or want < 0 or daily < 0 or total < 0 or lease_ttl <= 0
    or window <= 0 or hash_ttl <= 0 then
  return redis.error_reply('ERR lease.lua: bad numeric argument')
end

local mine = 'w:' .. ARGV[1]
local day = ARGV[6]
local BUCKET_MS = 10000  -- in-flight is kept in 10-second buckets (pacing/pacer.py agrees)
local oldest = math.floor((now - window) / BUCKET_MS)
local bucket = 'f:' .. string.format('%d', math.floor(now / BUCKET_MS))

local others = 0
local in_flight = 0
local expired = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local name = fields[i]
  local value = fields[i + 1]
  local kind = string.sub(name, 1, 2)
  if kind == 'w:' then
    local amount, expires, lday = string.match(value, '^(%d+) (%d+) (%d+)$')
    amount = tonumber(amount) or 0
    expires = tonumber(expires) or 0
    if name == mine then
      -- replaced below: the worker reports what it used of it and says what it wants
    elseif expires < now then
      expired = expired + amount  -- a lost worker's lease: presume it was all committed
      redis.call('HDEL', KEYS[1], name)
    elseif lday == day then
      others = others + amount
    else
      redis.call('HDEL', KEYS[1], name)  -- another day's lease: no longer reserves anything
    end
  elseif kind == 'f:' then
    local m = tonumber(string.sub(name, 3))
    if m and m >= oldest then  -- the bucket still overlaps the window
      in_flight = in_flight + (tonumber(value) or 0)
    else
      redis.call('HDEL', KEYS[1], name)
    end
  elseif kind == 'x:' and name ~= 'x:' .. day then
    redis.call('HDEL', KEYS[1], name)  -- a past day's commitment count
  end
end

local moved = consumed + expired
if moved > 0 then
  redis.call('HINCRBY', KEYS[1], bucket, string.format('%d', moved))
  in_flight = in_flight + moved
end
if consumed > 0 then
  redis.call('HINCRBY', KEYS[1], 'x:' .. day, string.format('%d', consumed))
end

local spent = redis.call('HMGET', KEYS[2], 'd:' .. day, 'total',
  'n:impression:' .. day, 'n:click:' .. day)
local today = tonumber(spent[1]) or 0
local lifetime = tonumber(spent[2]) or 0

-- The worker holds what it wants, within what the budget has room for beside
-- everything else: a lease shrinks (even to 0) when spend overtook the plan.
local room = want
if daily > 0 then room = math.min(room, daily - today - in_flight - others) end
if total > 0 then room = math.min(room, total - lifetime - in_flight - others) end
local held = math.max(0, room)

if held > 0 then
  redis.call('HSET', KEYS[1], mine,
    string.format('%d %d %s', held, now + lease_ttl, day))
else
  redis.call('HDEL', KEYS[1], mine)
end
redis.call('EXPIRE', KEYS[1], hash_ttl)

local committed = tonumber(redis.call('HGET', KEYS[1], 'x:' .. day)) or 0
return {held, today, lifetime, in_flight, others, committed,
  tonumber(spent[3]) or 0, tonumber(spent[4]) or 0}
