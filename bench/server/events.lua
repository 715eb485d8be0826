-- wrk script: POST /v1/events with batches of RF_BATCH (default 1000) new
-- events per request; every event is distinct (user per request and
-- thread, increasing timestamps), so each one is a new row in the store.
local per = tonumber(os.getenv("RF_BATCH") or "1000")
local items = tonumber(os.getenv("RF_ITEMS") or "100000")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  local parts = {}
  for i = 1, per do
    parts[i] = string.format('{"user":"bench%d_%d","item":"i%d","type":"view","ts":%d}',
                             tid or 0, n, (n * 7919 + i * 104729) % items + 1, 1800000000 + i)
  end
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"},
                    "[" .. table.concat(parts, ",") .. "]")
end
