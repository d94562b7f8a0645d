-- wrk script of scripts/bench: GET of the URL given to wrk, with
-- "Authorization: Bearer TOKEN" when a token follows "--" (the same request
-- bytes for genq-api and for the nginx reference). done() prints one
-- machine-readable line.
function init(args)
  if args[1] ~= nil and args[1] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[1]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d duration_us=%d non2xx=%d sockerr=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
