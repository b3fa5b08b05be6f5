-- wrk script of bench/peers/fluent-bit.sh: POSTs NDJSON bodies read from $BODIES (bodies
-- separated by an empty line), each thread cycling through them from its own starting point,
-- so the records are realistic and not one body repeated. Prints what the script parses.
local bodies = {}
local i = 0

function init(args)
  local f = assert(io.open(os.getenv("BODIES"), "rb"))
  local data = f:read("*a")
  f:close()
  for b in string.gmatch(data, "(.-\n)\n") do
    bodies[#bodies + 1] = b
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  i = math.random(#bodies)
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end

function done(summary, latency, requests)
  local failed = summary.errors.status
  io.write(string.format("wrk: requests=%d failed=%d timeouts=%d p50_us=%d p99_us=%d\n",
    summary.requests, failed, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
