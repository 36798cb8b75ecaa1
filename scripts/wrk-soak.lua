-- wrk script for scripts/soak: a fixed request mix, in turn on every connection of a thread:
-- whoami, a page of clicks, a conversion, a click capture, an MCP tools/call and a page of
-- activity, each request paced by SOAK_DELAY_MS (a soak checks stability, not throughput).
-- Conversions reference a click this thread captured two rounds earlier (so it exists and is
-- within the memory store's newest 2,000), and their txn ids cycle over SOAK_TXN_IDS values per
-- thread: the memory store keeps every conversion, so unbounded creates would measure retained
-- data rather than leaks; past the first round each one is the idempotent duplicate (200).
local next_thread = 0
local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "5")
local txn_ids = tonumber(os.getenv("SOAK_TXN_IDS") or "500")
local key = os.getenv("SOAK_KEY")

threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  math.randomseed(os.time() + thread_number)
  prefix = string.format("soak-%d-%d-", os.time(), thread_number)
  sequence = 0
  captured = {}
  auth = { ["Authorization"] = "Bearer " .. key, ["User-Agent"] = "Mozilla/5.0 (soak)" }
end

local function headers(extra)
  local all = {}
  for name, value in pairs(auth) do all[name] = value end
  for name, value in pairs(extra or {}) do all[name] = value end
  return all
end

local json = { ["Content-Type"] = "application/json" }

function request()
  sequence = sequence + 1
  local round = math.floor((sequence - 1) / 6)
  local kind = (sequence - 1) % 6
  if kind == 0 then
    return wrk.format("GET", "/api/public/whoami", headers())
  elseif kind == 1 then
    return wrk.format("GET", "/api/public/clicks?limit=25", headers())
  elseif kind == 2 then
    -- The demo seed's clicks until this thread has captured its own.
    local click = captured[round - 2] or string.format("demo-click-%03d", 199)
    local body = string.format(
      '{"click_id":"%s","amount":25,"txn_id":"soak-%d-%d"}',
      click, thread_number, round % txn_ids)
    return wrk.format("POST", "/api/public/conversions", headers(json), body)
  elseif kind == 3 then
    local click = prefix .. round
    captured[round] = click
    captured[round - 3] = nil
    local body = string.format(
      '{"click_id":"%s","offer":"summer-sale","partner":"alice-media","sub1":"soak"}', click)
    return wrk.format("POST", "/api/clicks/capture", headers({
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = string.format(
        "10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254)),
    }), body)
  elseif kind == 4 then
    return wrk.format("POST", "/api/mcp", headers({
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json, text/event-stream",
      ["MCP-Protocol-Version"] = "2025-11-25",
    }), '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_offers","arguments":{"limit":25}}}')
  else
    return wrk.format("GET", "/api/public/activity?limit=25", headers())
  end
end

function delay()
  return delay_ms
end

-- Non-2xx answers, counted per thread, with the first one's status and body to name the cause.
errors = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    errors = errors + 1
    if not first_error then first_error = status .. " " .. body end
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("errors")
    local first = thread:get("first_error")
    if first then io.write("soak first error: " .. first .. "\n") end
  end
  io.write(string.format("soak non-2xx: %d\n", total))
  io.write(string.format("soak requests completed: %d\n", summary.requests))
end
