-- Record purchase lines of one shopper: b:<pid> keeps the latest purchase time.
-- KEYS[1] ex:shp:{s}
-- ARGV: ttl_s, prune_above, exposure_keep_after_ms, purchase_keep_after_s, then pid, ts pairs
local hot = KEYS[1]
for i = 5, #ARGV, 2 do
  local f = "b:" .. ARGV[i]
  local ts = tonumber(ARGV[i + 1])
  local old = tonumber(redis.call("HGET", hot, f) or "0")
  if ts > old then redis.call("HSET", hot, f, ts) end
end
redis.call("EXPIRE", hot, tonumber(ARGV[1]))
if redis.call("HLEN", hot) > tonumber(ARGV[2]) then
  local keep_ms, keep_s = tonumber(ARGV[3]), tonumber(ARGV[4])
  local all = redis.call("HGETALL", hot)
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    local k = string.sub(f, 1, 2)
    if k == "b:" and tonumber(v) < keep_s then
      redis.call("HDEL", hot, f)
    elseif k == "x:" then
      local l = tonumber(string.match(v, "^%d+ %d+ (%d+)") or "0")
      if l < keep_ms then redis.call("HDEL", hot, f) end
    end
  end
end
return 1
