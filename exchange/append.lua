-- Append a batch of events to the event stream in one round trip.
-- KEYS[1]  the events stream
-- ARGV[1]  approximate MAXLEN of the stream
-- ARGV[2..] pairs: field name ("e" one event, "b" a JSON array of events), payload
-- Returns the number of entries added. One call replaces a pipeline of XADDs: the
-- client packs one command (in C, via hiredis) instead of building one per entry.
local maxlen = ARGV[1]
local n = 0
for i = 2, #ARGV - 1, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', ARGV[i], ARGV[i + 1])
  n = n + 1
end
return n
