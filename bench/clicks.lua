-- GET /r/<code> (wrk -s): the referral codes in BENCH_CODES (comma-separated) round-robin, a browser's User-Agent.
-- Status codes are counted per thread and summed in done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  codes = {}
  for code in string.gmatch(os.getenv("BENCH_CODES"), "[^,]+") do
    table.insert(codes, code)
  end
  counter = (id - 1) * 53
  statuses = {}
end

request = function()
  counter = counter + 1
  return wrk.format("GET", "/r/" .. codes[counter % #codes + 1] .. "?utm_source=bench", {
    ["User-Agent"] = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) " ..
      "Chrome/131.0 Mobile Safari/537.36",
  })
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d: %d\n", status, n))
  end
end
