-- wrk script of scripts/bench: POST /v1/jobs of a storyboard (1 credit),
-- cycling through the tokens of the file that follows "--" (one a line:
-- each request is the next user's). done() prints one machine-readable line.
local reqs = {}
local n, i = 0, 0
local threads = 0

-- runs once per thread, before init: threads start at different users
function setup(thread)
  thread:set("offset", threads * 7)
  threads = threads + 1
end

function init(args)
  local body = '{"kind":"storyboard","input":{"prompt":"a bench shot of a coffee shop","scenes":3}}'
  for token in io.lines(args[1]) do
    if token ~= "" then
      n = n + 1
      reqs[n] = wrk.format("POST", "/v1/jobs", {
        ["Host"] = wrk.host,
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
      }, body)
    end
  end
  i = (offset or 0) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

done = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
