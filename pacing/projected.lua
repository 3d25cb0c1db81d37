-- projected.lua: a campaign's spend today plus what is committed and not yet billed.
--
-- KEYS[1]  spend hash  pc:{c<id>}:spend
-- KEYS[2]  lease hash  pc:{c<id>}:lease
-- ARGV[1]  day         YYYYMMDD (the campaign's zone)
-- ARGV[2]  now ms
-- ARGV[3]  window ms   in-flight lifetime (lease.lua's ARGV[9])
--
-- Read only. Returns {spent_today, in_flight}: one call instead of HGET + HGETALL, for
-- the pacing controller's round over every campaign.

local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
if not (now and window) then
  return redis.error_reply('ERR projected.lua: bad numeric argument')
end
local spent = tonumber(redis.call('HGET', KEYS[1], 'd:' .. ARGV[1])) or 0
local oldest = math.floor((now - window) / 10000)  -- lease.lua's 10-second buckets
local in_flight = 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local name = fields[i]
  if string.sub(name, 1, 2) == 'f:' then
    local n = tonumber(string.sub(name, 3))
    if n and n >= oldest then in_flight = in_flight + (tonumber(fields[i + 1]) or 0) end
  end
end
return {spent, in_flight}
