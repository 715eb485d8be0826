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
