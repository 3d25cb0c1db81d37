-- bill.lua: bill one event exactly once against a campaign's daily and lifetime budgets.
--
-- KEYS[1]  dedupe marker   pc:{c<id>}:seen:<event_id>  (string, TTL ARGV[6])
-- KEYS[2]  spend hash      pc:{c<id>}:spend            (no TTL)
-- KEYS[3]  events stream   chosen by the caller
-- KEYS[4]  (optional) prerequisite marker pc:{c<id>}:seen:<event_id of what must come
--          first>, e.g. the impression a click belongs to
--
-- ARGV[1]  kind             event kind, e.g. "click" or "imp"
-- ARGV[2]  price            micro-units asked for this event (>= 0)
-- ARGV[3]  daily budget     micro-units, 0 = no daily limit
-- ARGV[4]  total budget     micro-units, 0 = no lifetime limit
-- ARGV[5]  day              YYYYMMDD the event is billed to
-- ARGV[6]  dedupe ttl       seconds the marker lives (> 0)
-- ARGV[7]  event            opaque bytes stored in the stream entry
-- ARGV[8]  stream maxlen    approximate cap on the events stream
-- ARGV[9]  campaign id      copied into the stream entry
-- ARGV[10] now ms           stored in the marker (when the event was recorded)
-- ARGV[11] min delay ms     with KEYS[4]: least time since the prerequisite was recorded
--
-- Returns {status, charged, spend_today, spend_total, exhausted}. status 1: recorded.
-- status 0: a duplicate; nothing changes. status 2: the prerequisite was never recorded;
-- status 3: it was recorded less than ARGV[11] ms ago. On 2 and 3 the event is marked
-- seen (so no retry can bill it) but nothing is charged, counted or logged here: the
-- caller logs it as invalid traffic.
--
-- Cluster: KEYS[1] and KEYS[2] share the hash tag {c<id>}. KEYS[3] is the one cross-slot
-- key: on Redis Cluster the caller will need one events stream per slot (e.g. tagged
-- {c<id>} too); on a single Redis any stream works.
--
-- Everything is validated before the first write: a script error after SET NX would
-- leave the event marked billed but never charged.

local price = tonumber(ARGV[2])
local daily = tonumber(ARGV[3])
local total = tonumber(ARGV[4])
local ttl = tonumber(ARGV[6])
local maxlen = tonumber(ARGV[8])
local now_ms = tonumber(ARGV[10])
local min_delay = tonumber(ARGV[11])
if not (price and daily and total and ttl and maxlen and now_ms and min_delay)
    or price < 0 or daily < 0 or total < 0 or ttl <= 0 or maxlen <= 0 or min_delay < 0 then
  return redis.error_reply('ERR bill.lua: bad numeric argument')
end

local kind = ARGV[1]
local day = ARGV[5]
local day_field = 'd:' .. day

if not redis.call('SET', KEYS[1], ARGV[10], 'NX', 'EX', ARGV[6]) then
  local spent = redis.call('HMGET', KEYS[2], day_field, 'total')
  return {0, 0, tonumber(spent[1]) or 0, tonumber(spent[2]) or 0, 0}
end

local spent = redis.call('HMGET', KEYS[2], day_field, 'total')
local today = tonumber(spent[1]) or 0
local lifetime = tonumber(spent[2]) or 0

if KEYS[4] then
  local before = tonumber(redis.call('GET', KEYS[4]))
  if not before then
    return {2, 0, today, lifetime, 0}
  end
  if now_ms - before < min_delay then
    return {3, 0, today, lifetime, 0}
  end
end

local charged = price
if daily > 0 then charged = math.min(charged, daily - today) end
if total > 0 then charged = math.min(charged, total - lifetime) end
if charged < 0 then charged = 0 end
-- Lua numbers are doubles: format as an integer so Redis never sees "1e+15".
local charged_arg = string.format('%d', charged)

today = redis.call('HINCRBY', KEYS[2], day_field, charged_arg)
lifetime = redis.call('HINCRBY', KEYS[2], 'total', charged_arg)
redis.call('HINCRBY', KEYS[2], 'n:' .. kind .. ':' .. day, 1)
redis.call('HINCRBY', KEYS[2], 'charged:' .. kind .. ':' .. day, charged_arg)

redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*',
  'k', kind, 'e', ARGV[7], 'c', charged_arg, 'p', ARGV[2], 'cid', ARGV[9], 'd', day)

local exhausted = 0
if (daily > 0 and today >= daily) or (total > 0 and lifetime >= total) then
  exhausted = 1
end
return {1, charged, today, lifetime, exhausted}
