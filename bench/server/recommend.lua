-- wrk script: GET /v1/recommend/u{random user}?k=10 over USERS users
-- (env RF_USERS, default 50000), seeded per thread for repeatable runs.
local users = tonumber(os.getenv("RF_USERS") or "50000")
local n = 0
function setup(thread)
  n = n + 1
  thread:set("seed", n)
end
function init(args)
  math.randomseed(seed or 1)
end
function request()
  return wrk.format("GET", "/v1/recommend/u" .. math.random(1, users) .. "?k=10")
end
-- RF_DELAY_MS: each connection waits this long after a reply before its
-- next request (a paced load: rate = connections / (delay + latency));
-- latencies stay those of the requests alone.
local pause = tonumber(os.getenv("RF_DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return pause
  end
end
