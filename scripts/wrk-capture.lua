-- wrk script for scripts/bench-load: every request captures a new click id (the realistic case;
-- duplicates are cheaper) from a random client address behind one trusted proxy hop, so the
-- per-IP fraud counters see ordinary traffic rather than one IP hammering.
local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  math.randomseed(os.time() + thread_number)
  prefix = string.format("load-%d-%d-", os.time(), thread_number)
  sequence = 0
end

function request()
  sequence = sequence + 1
  wrk.headers["x-forwarded-for"] = string.format(
    "10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  local body = string.format(
    '{"click_id":"%s%d","offer":"summer-sale","partner":"alice-media","sub1":"load"}',
    prefix, sequence)
  return wrk.format("POST", nil, nil, body)
end
