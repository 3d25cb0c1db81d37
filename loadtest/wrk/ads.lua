-- wrk script for POST /v1/ads: rotates through pre-built request bodies.
--
--   wrk -t1 -c32 -d15s --latency -s loadtest/wrk/ads.lua http://127.0.0.1:8080/v1/ads -- BODIES
--
-- BODIES is a file with one compact JSON request body per line (bench.py writes it from
-- the demo catalogue). Every request is formatted once in init(), so request() only
-- returns a pre-built string. done() prints one "WRKJSON {...}" line with the figures
-- bench.py reads (latencies in microseconds); wrk's own report is printed as usual.

local requests = {}
local count = 0
local index = 0
local threads = 0

-- Runs in the main script state once per thread, before init().
function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s ads.lua URL -- BODIES_FILE")
   end
   local headers = {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
   }
   for line in io.lines(path) do
      if #line > 0 then
         count = count + 1
         requests[count] = wrk.format("POST", wrk.path, headers, line)
      end
   end
   if count == 0 then
      error("no request bodies in " .. path)
   end
   -- Threads start at different points of the list.
   index = ((tid or 0) * 7919) % count
end

function request()
   index = index % count + 1
   return requests[index]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
      '"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
      '"max_us":%d,"mean_us":%.1f,"stdev_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean, latency.stdev))
end
