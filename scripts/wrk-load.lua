-- wrk script for scripts/bench-load: one script for every route, chosen by environment variables.
--   WRK_MODE=get      the URL as given (headers from the command line);
--   WRK_MODE=capture  a new click id per request, from a random client address behind one trusted
--                     proxy hop (the realistic case; duplicates are cheaper, and the per-IP fraud
--                     counters see ordinary traffic rather than one IP hammering);
--   WRK_MODE=mcp      one stateless MCP `tools/call` (WRK_MCP_TOOL, default list_offers) per request.
--   WRK_DELAY_MS      if set, every connection waits this long before each request: a paced run at
--                     about connections * 1000 / (delay + latency) requests/s instead of saturation.
local mode = os.getenv("WRK_MODE") or "get"
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "")
local tool = os.getenv("WRK_MCP_TOOL") or "list_offers"
local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  math.randomseed(os.time() + thread_number)
  prefix = string.format("load-%d-%d-", os.time(), thread_number)
  sequence = 0
  if mode == "mcp" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["Accept"] = "application/json, text/event-stream"
    wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
    wrk.body = string.format(
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s","arguments":{"limit":25}}}', tool)
  elseif mode == "capture" then
    wrk.headers["Content-Type"] = "application/json"
  end
end

if delay_ms then
  function delay()
    return delay_ms
  end
end

-- Only capture builds each request; the other modes send wrk's prebuilt one (cheapest client).
if mode == "capture" then
  function request()
    sequence = sequence + 1
    wrk.headers["x-forwarded-for"] = string.format(
      "10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
    local body = string.format(
      '{"click_id":"%s%d","offer":"summer-sale","partner":"alice-media","sub1":"load"}',
      prefix, sequence)
    return wrk.format("POST", nil, nil, body)
  end
end
