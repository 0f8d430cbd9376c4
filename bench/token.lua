-- wrk script for bench/token.sh.
--
-- BENCH_MODE=token (default): POST /token, grant_type=client_credentials, HTTP Basic client
--   authentication from BENCH_AUTH (the full header value, "Basic base64(id:secret)").
-- BENCH_MODE=get: plain GET of the URL given to wrk (used for /jwks and the metadata baseline),
--   with the same response hook so every run pays the same client-side cost.
-- BENCH_MODE=post (bench/gateway.sh): POST of BENCH_BODY as application/json, with
--   "Authorization: BENCH_AUTH" when BENCH_AUTH is set (e.g. "Bearer eyJ...").
--
-- Every response is checked: anything but 200 is counted and the first one is kept, so a
-- run of 401s or 429s cannot pass for a fast token endpoint. done() prints machine-readable
-- lines that token.sh parses (latencies in microseconds).

local mode = os.getenv("BENCH_MODE") or "token"

if mode == "token" then
  local auth = os.getenv("BENCH_AUTH")
  if auth == nil or auth == "" then
    error("BENCH_AUTH (\"Basic ...\") must be set for BENCH_MODE=token")
  end
  wrk.method = "POST"
  wrk.body = "grant_type=client_credentials&scope=read"
  wrk.headers["Authorization"] = auth
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Accept"] = "application/json"
elseif mode == "post" then
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_BODY") or "{}"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  local auth = os.getenv("BENCH_AUTH")
  if auth ~= nil and auth ~= "" then
    wrk.headers["Authorization"] = auth
  end
else
  wrk.method = "GET"
  wrk.headers["Accept"] = "application/json"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  non200 = 0
  first_status = 0
  first_body = ""
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    non200 = non200 + 1
    if first_status == 0 then
      first_status = status
      first_body = string.sub(body or "", 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local oks, bad, fs, fb = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    oks = oks + t:get("ok")
    bad = bad + t:get("non200")
    if fs == 0 and t:get("first_status") ~= 0 then
      fs = t:get("first_status")
      fb = t:get("first_body")
    end
  end
  local secs = summary.duration / 1e6
  io.write(string.format("BENCH requests %d\n", summary.requests))
  io.write(string.format("BENCH ok %d\n", oks))
  io.write(string.format("BENCH non200 %d\n", bad))
  io.write(string.format("BENCH socket_errors %d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("BENCH rps %.1f\n", summary.requests / secs))
  io.write(string.format("BENCH ok_rps %.1f\n", oks / secs))
  io.write(string.format("BENCH p50_us %d\n", latency:percentile(50)))
  io.write(string.format("BENCH p90_us %d\n", latency:percentile(90)))
  io.write(string.format("BENCH p99_us %d\n", latency:percentile(99)))
  io.write(string.format("BENCH max_us %d\n", latency.max))
  if fs ~= 0 then
    io.write(string.format("BENCH first_non200 %d %s\n", fs, (string.gsub(fb, "\n", " "))))
  end
end
