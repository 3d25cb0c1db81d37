-- Append a batch of events to the event stream in one round trip.
-- KEYS[1]  the events stream
-- ARGV[1]  approximate MAXLEN of the stream
-- ARGV[2..] one encoded event each (stored in field "e")
-- Returns the number of entries added. One call replaces a pipeline of XADDs: the
-- client packs one command (in C, via hiredis) instead of building one per event.
local maxlen = ARGV[1]
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'e', ARGV[i])
end
return #ARGV - 1
