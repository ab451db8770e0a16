-- wrk script for bench/serve.py: POST JSON bodies read from a file (one pre-serialized body per
-- line, seeded entity ids), round-robin with a different starting offset per thread, and print a
-- one-line JSON summary in done().
--
--   wrk -t2 -c8 -d10s --latency -s bench/serve_wrk.lua http://127.0.0.1:PORT/features -- BODIES_FILE
--
-- wrk counts answers with status >= 400 in errors.status; the summary reports them with the
-- connect/read/write/timeout errors so the caller can refuse to report failed requests as throughput.

local threads = {}
local bodies = {}
local next_body = 0

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: ... -s serve_wrk.lua URL -- BODIES_FILE")
   end
   for line in io.lines(path) do
      if #line > 0 then
         bodies[#bodies + 1] = line
      end
   end
   if #bodies == 0 then
      error("no bodies in " .. path)
   end
   next_body = ((thread_index or 0) * 397) % #bodies
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   local auth = os.getenv("BENCH_AUTHORIZATION")  -- e.g. "Bearer psk_..." (kept off the command line)
   if auth ~= nil and #auth > 0 then
      wrk.headers["Authorization"] = auth
   end
end

function request()
   next_body = next_body % #bodies + 1
   return wrk.format(nil, nil, nil, bodies[next_body])
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
      '"p999_us": %d, "max_us": %d, "mean_us": %.1f, "errors_connect": %d, "errors_read": %d, ' ..
      '"errors_write": %d, "errors_status": %d, "errors_timeout": %d}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean, e.connect, e.read,
      e.write, e.status, e.timeout))
end
