-- POST /api/v1/conversions (wrk -s): each request a new order, customer, amount and Idempotency-Key; the referral
-- codes in BENCH_CODES (comma-separated) are used round-robin, so attribution meets many referrers, not one cached
-- code. Status codes are counted per thread and summed in done() (a 4xx/5xx is a failed round), and so are answers
-- replayed under an Idempotency-Key sent before (a round must have none: each request is a new order).
--
-- The order ids start with BENCH_RUN, which the caller makes new for every run: LuaJIT's math.random is not seeded,
-- so a prefix drawn from it was the same in every wrk run, and each round replayed the orders of the rounds before
-- (cheap 201 replays counted as orders; found and fixed in issue 15, docs/benchmarks.md).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  local run = os.getenv("BENCH_RUN")
  if run == nil or run == "" then
    error("BENCH_RUN must be set: a value new for every run")
  end
  prefix = string.format("%s-w%d-", run, id)
  key = os.getenv("BENCH_KEY")
  codes = {}
  for code in string.gmatch(os.getenv("BENCH_CODES"), "[^,]+") do
    table.insert(codes, code)
  end
  counter = 0
  offset = (id - 1) * 97 -- threads start at different referrers
  statuses = {}
  replayed = 0
end

request = function()
  counter = counter + 1
  local order = prefix .. counter
  local code = codes[(counter + offset) % #codes + 1]
  local cents = 1000 + (counter * 7919) % 49000 -- 10.00 .. 499.99
  local amount = string.format("%d.%02d", math.floor(cents / 100), cents % 100)
  local body = '{"order_id":"' .. order .. '","amount":"' .. amount .. '","currency":"PLN","code":"' .. code ..
    '","customer":{"external_id":"' .. order .. '","email":"buyer-' .. order .. '@example.com"},' ..
    '"ip":"203.0.113.7","user_agent":"Mozilla/5.0 (iPhone) Safari/604.1"}'
  return wrk.format("POST", "/api/v1/conversions", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = order,
  }, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if headers["Idempotent-Replayed"] or headers["idempotent-replayed"] then
    replayed = replayed + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  local replays = 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
    replays = replays + thread:get("replayed")
  end
  io.write(string.format("replayed %d\n", replays))
  for status, n in pairs(total) do
    io.write(string.format("status %d: %d\n", status, n))
  end
end
