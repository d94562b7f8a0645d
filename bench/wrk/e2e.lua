-- wrk script of scripts/bench's end-to-end case: POST /v1/jobs of a
-- storyboard (1 credit, a distinct prompt each), cycling through the tokens
-- of the file that follows "--", until this thread has sent its share of
-- the total that follows the file ("-- TOKENS N T DONE": thread k of T
-- sends N / T, the first N mod T threads one more). A connection that asks
-- for a request once its thread's share is out gets GET /healthz; a thread
-- whose share is all answered stops and creates the file DONE.k, so exactly
-- N jobs are submitted and the caller knows when (wrk itself runs until its
-- -d, which is only the bound). done() prints one machine-readable line.
local tokens = {}
local n, i = 0, 0
local sent, answered, share = 0, 0, 0
local threads = {}
-- wrk calls thread 1's request() once before the run, to check what it
-- returns, and never sends that one: it gets /healthz and is not counted
local checked = false
local done_file

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  for token in io.lines(args[1]) do
    if token ~= "" then
      n = n + 1
      tokens[n] = token
    end
  end
  local total, count = tonumber(args[2]), tonumber(args[3])
  share = math.floor(total / count) + ((index < total % count) and 1 or 0)
  i = (index * 7) % n
  checked = index ~= 0
  done_file = args[4] .. "." .. index
end

function request()
  if not checked or sent >= share then
    checked = true
    return wrk.format("GET", "/healthz", { ["Host"] = wrk.host })
  end
  sent = sent + 1
  i = i % n + 1
  local body = string.format(
    '{"kind":"storyboard","input":{"prompt":"an end to end bench shot %d-%d","scenes":3}}', index, sent)
  return wrk.format("POST", "/v1/jobs", {
    ["Host"] = wrk.host,
    ["Authorization"] = "Bearer " .. tokens[i],
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  if answered < share and status ~= 200 then
    answered = answered + 1
  end
  if answered >= share and done_file then
    io.open(done_file, "w"):close()
    done_file = nil
    wrk.thread:stop()
  end
end

done = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
