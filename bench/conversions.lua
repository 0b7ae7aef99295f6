-- POST /api/v1/conversions with a new order, customer and Idempotency-Key each time (wrk -s).
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  prefix = string.format("w%d-%d-", id, math.random(1, 1000000000))
  code = os.getenv("BENCH_CODE")
  key = os.getenv("BENCH_KEY")
end

request = function()
  counter = counter + 1
  local order = prefix .. counter
  local body = '{"order_id":"' .. order .. '","amount":"129.90","currency":"PLN","code":"' .. code ..
    '","customer":{"external_id":"' .. order .. '","email":"buyer-' .. order .. '@example.com"},' ..
    '"ip":"203.0.113.7","user_agent":"Mozilla/5.0 (iPhone) Safari/604.1"}'
  return wrk.format("POST", "/api/v1/conversions", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = order,
  }, body)
end
