-- Count one impression ("i") or click ("c") of a sponsored product for one shopper.
-- KEYS[1] ex:shp:{s} (hot hash)  KEYS[2] ex:shp:{s}:x (per-campaign detail)
-- ARGV: pid, campaign, kind, now_ms, cap_unit_s (0 = no cap), cap_bucket, notify_at,
--       ttl_s, prune_above, exposure_keep_after_ms, purchase_keep_after_s
-- Returns the product's impressions this cycle if they just reached notify_at with no
-- purchase since the cycle began (the "exposed, not converted" signal), else 0.
local hot, detail = KEYS[1], KEYS[2]
local pid, cid, kind = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[4])
local unit, bucket, notify = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local ttl, prune_above = tonumber(ARGV[8]), tonumber(ARGV[9])

local function fields(v)
  if not v then return 0, 0, 0, 0 end
  local a, b, c, d = string.match(v, "^(%d+) (%d+) (%d+) (%d+)$")
  if not a then return 0, 0, 0, 0 end
  return tonumber(a), tonumber(b), tonumber(c), tonumber(d)
end

local function pack(i, c, last, first)
  return string.format("%d %d %d %d", i, c, last, first)
end

local crossed = 0
local xf = "x:" .. pid
local imps, clicks, last, first = fields(redis.call("HGET", hot, xf))
local bought = tonumber(redis.call("HGET", hot, "b:" .. pid) or "0")
if imps > 0 and bought * 1000 >= first then
  imps, clicks, first = 0, 0, 0  -- bought since this cycle began: a new cycle
end
local yf = pid .. ":" .. cid
local yi, yc, ylast, yfirst = fields(redis.call("HGET", detail, yf))
if kind == "i" then
  if unit > 0 then
    local ff = "f:" .. cid
    local b, n = string.match(redis.call("HGET", hot, ff) or "", "^(%d+) (%d+)$")
    n = (b == bucket) and tonumber(n) or 0
    redis.call("HSET", hot, ff, bucket .. " " .. (n + 1))
  end
  if first == 0 then first = now end
  imps = imps + 1
  if yfirst == 0 then yfirst = now end
  yi = yi + 1
  if imps == notify and bought * 1000 < first then crossed = imps end
else
  if first == 0 then first = now end
  clicks = clicks + 1
  if yfirst == 0 then yfirst = now end
  yc = yc + 1
end
redis.call("HSET", hot, xf, pack(imps, clicks, now, first))
redis.call("HSET", detail, yf, pack(yi, yc, now, yfirst))
redis.call("EXPIRE", hot, ttl)
redis.call("EXPIRE", detail, ttl)

-- Keep both hashes small: past the bound, drop exposures not seen for the keep window,
-- purchases older than the longest window and frequency counts of past buckets.
local keep_ms, keep_s = tonumber(ARGV[10]), tonumber(ARGV[11])
if redis.call("HLEN", hot) > prune_above then
  local all = redis.call("HGETALL", hot)
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    local k = string.sub(f, 1, 2)
    if k == "x:" then
      local _, _, l = fields(v)
      if l < keep_ms then redis.call("HDEL", hot, f) end
    elseif k == "b:" then
      if tonumber(v) < keep_s then redis.call("HDEL", hot, f) end
    elseif k == "f:" and f ~= "f:" .. cid then
      redis.call("HDEL", hot, f)  -- re-created on the campaign's next impression
    end
  end
end
if redis.call("HLEN", detail) > prune_above then
  local all = redis.call("HGETALL", detail)
  for i = 1, #all, 2 do
    local _, _, l = fields(all[i + 1])
    if l < keep_ms then redis.call("HDEL", detail, all[i]) end
  end
end
return crossed
