-- wrk script for every benchmark run. Settings come from the environment:
--   BENCH_METHOD    request method (default GET)
--   BENCH_TOKEN     sent as X-Plex-Token when set
--   BENCH_ACCEPT    sent as Accept when set
--   BENCH_PIPELINE  requests sent together per write (default 1)
-- done() prints one line starting with "BENCH" that run.sh parses.

local method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN") or ""
local accept = os.getenv("BENCH_ACCEPT") or ""
local depth = tonumber(os.getenv("BENCH_PIPELINE") or "1")

wrk.method = method
if token ~= "" then
  wrk.headers["X-Plex-Token"] = token
end
if accept ~= "" then
  wrk.headers["Accept"] = accept
end

if depth > 1 then
  local batch = nil
  -- Defining request() makes wrk send what it returns on each write.
  -- Without it, wrk sends one prebuilt request.
  function request()
    if batch == nil then
      batch = string.rep(wrk.format(), depth)
    end
    return batch
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d status_errors=%d timeouts=%d latency_p50_us=%d latency_p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
