-- rollup.lua: add one event to its campaign's day aggregate, exactly once.
--
-- KEYS[1]  marker          rp:{c<id>}:seen:<event id>   (string, TTL ARGV[9])
-- KEYS[2]  day aggregate   rp:{c<id>}:<YYYYMMDD>        (hash, TTL ARGV[10])
-- KEYS[3]  search term     rp:{c<id>}:term:<imp id>     (string, TTL ARGV[11])
-- KEYS[4]  early beacons   rp:{c<id>}:wait:<imp id>     (list, TTL ARGV[11])
--
-- ARGV[1]  kind       w (win), i (impression), c (click), v (invalid)
-- ARGV[2]  hour       "00".."23" in the campaign's zone
-- ARGV[3]  sku        "" = none
-- ARGV[4]  placement  "" = none
-- ARGV[5]  term       wins: the normalised search query ("" = not a search page);
--                     impressions and clicks: "?" on a search placement (read the term
--                     from KEYS[3]), "" otherwise
-- ARGV[6]  spend      micro-units charged (clicks; 0 otherwise)
-- ARGV[7]  position   slot + 1 (impressions; 0 = not counted)
-- ARGV[8]  reason     invalid events: why ("" otherwise)
-- ARGV[9]  marker ttl, ARGV[10] aggregate ttl, ARGV[11] term ttl (seconds)
--
-- Every field of the aggregate is "<dim>:<value>" -> "wins imps clicks spend possum
-- invalid" (six integers, space separated); dims: h hour, k sku, p placement, t term,
-- r invalid reason. One packed field per value, not one per metric: a 30-day report by
-- SKU reads 6x fewer fields. Read-modify-write is safe because a script is atomic.
--
-- Wins reach the stream through a write-behind queue, impressions and clicks straight from
-- bill.lua, so a beacon can arrive before its win. A search beacon that finds no term yet
-- waits in KEYS[4] ("<kind> <spend> <position>"); the win, when counted, adds the waiting
-- beacons to its term (in the win's day: they are seconds apart).
--
-- Returns 1 if counted, 0 if the event was counted before (a redelivery: nothing changes).
-- Cluster: all four keys carry the campaign's hash tag {c<id>}.

local kind = ARGV[1]
-- Validated before the marker is set: an error after SET NX would lose the event.
if not (kind == 'w' or kind == 'i' or kind == 'c' or kind == 'v') then
  return redis.error_reply('ERR rollup.lua: unknown kind ' .. kind)
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[9]) then
  return 0
end

local spend = tonumber(ARGV[6]) or 0
local pos = tonumber(ARGV[7]) or 0
local delta = {0, 0, 0, 0, 0, 0}

local function add(field, d)
  d = d or delta
  local old = redis.call('HGET', KEYS[2], field)
  local v = {0, 0, 0, 0, 0, 0}
  if old then
    local i = 1
    for n in string.gmatch(old, '%-?%d+') do
      v[i] = tonumber(n)
      i = i + 1
    end
  end
  for i = 1, 6 do v[i] = v[i] + d[i] end
  -- %d keeps large micro-unit sums out of "1e+15" notation.
  redis.call('HSET', KEYS[2], field, string.format('%d %d %d %d %d %d',
    v[1], v[2], v[3], v[4], v[5], v[6]))
end

local term = ARGV[5]
if kind == 'w' then
  delta[1] = 1
  if term ~= '' then
    redis.call('SET', KEYS[3], term, 'EX', ARGV[11])
    for _, early in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
      local k, s, p = string.match(early, '^(%a) (%d+) (%d+)$')
      if k == 'i' then
        add('t:' .. term, {0, 1, 0, 0, tonumber(p), 0})
      elseif k == 'c' then
        add('t:' .. term, {0, 0, 1, tonumber(s), 0, 0})
      end
    end
    redis.call('DEL', KEYS[4])
  end
elseif kind == 'i' or kind == 'c' then
  if kind == 'i' then
    delta[2] = 1
    delta[5] = pos
  else
    delta[3] = 1
    delta[4] = spend
  end
  if term == '?' then
    term = redis.call('GET', KEYS[3])
    if not term then
      redis.call('RPUSH', KEYS[4], string.format('%s %d %d', kind, spend, pos))
      redis.call('EXPIRE', KEYS[4], ARGV[11])
      term = ''
    end
  else
    term = ''
  end
else
  delta[6] = 1
end

add('h:' .. ARGV[2])
if ARGV[3] ~= '' then add('k:' .. ARGV[3]) end
if ARGV[4] ~= '' then add('p:' .. ARGV[4]) end
if term ~= '' then add('t:' .. term) end
if ARGV[8] ~= '' then add('r:' .. ARGV[8]) end
redis.call('EXPIRE', KEYS[2], ARGV[10])
return 1
