-- wrk: POST /api/v1/admin/awards, a fresh Idempotency-Key and the next member per request.
-- Arguments after `--`: token funder_id first_member_id member_count run_id
-- done() prints one line "WRK_RESULT {json}" that loadtests/bench_wrk.py reads.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  token, funder, first, count, run = args[1], args[2], tonumber(args[3]), tonumber(args[4]), args[5]
  counter, ok, bad = 0, 0, 0
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end

function request()
  counter = counter + 1
  local member = first + ((counter * 16 + id) % count)   -- at most 16 threads
  headers["Idempotency-Key"] = run .. "-" .. id .. "-" .. counter
  local body = string.format(
    '{"member_id": %d, "points": 10, "funder_id": %s, "reason": "wrk"}', member, funder)
  return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local okt, badt = 0, 0
  for _, t in ipairs(threads) do
    okt = okt + t:get("ok")
    badt = badt + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "ok": %d, "non_2xx": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, okt, badt, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
