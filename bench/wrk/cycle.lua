-- One page of the benchmark: each wrk thread cycles through its own list of prepared requests
-- (bench/run.py writes them, with the signed-in users' cookies and CSRF tokens, to a data file
-- passed after "--"), and counts answers that are not what the page should answer.
--
-- Data file: a Lua chunk returning
--   { expect = 200, bad = "flash-error" or nil,
--     threads = { { {method=, path=, headers={...}, body=}, ... }, ... } }
-- A write page lists, per thread, "sign up v1..vK, cancel v1..vK": a volunteer's next request is
-- K requests later, so (with K above the thread's connections) never in flight at the same time.

local threads = {}
local started = 0

function setup(thread)
  thread:set("tid", started)
  started = started + 1
  table.insert(threads, thread)
end

function init(args)
  local data = dofile(args[1])
  local list = data.threads[(tid % #data.threads) + 1]
  prepared = {}
  for i, item in ipairs(list) do
    prepared[i] = wrk.format(item.method, item.path, item.headers, item.body)
  end
  expect = data.expect
  marker = data.bad
  position = 0
  -- wrk calls request() once on the first thread, right after init, only to check that it
  -- builds a valid request; that call must not use up the first item (a sign-up), or the
  -- thread's first cancel would find nothing to cancel.
  checked = tid ~= 0
  unexpected = 0
  first_bad = ""
  cache_hits = 0
  answered = 0
end

function request()
  if not checked then
    checked = true
    return prepared[1]
  end
  position = position + 1
  if position > #prepared then
    position = 1
  end
  return prepared[position]
end

local function note(status, body)
  unexpected = unexpected + 1
  if first_bad == "" then
    -- What went wrong, for the report: the status and the message the page showed.
    local at = body and string.find(body, 'class="flash', 1, true)
    local text = body and string.sub(body, at or 1, (at or 1) + 300) or ""
    first_bad = status .. " " .. string.gsub(text, "%s+", " ")
  end
end

function response(status, headers, body)
  answered = answered + 1
  -- The portal's page cache says X-Page-Cache: hit for an answer it did not render.
  if headers["X-Page-Cache"] == "hit" then
    cache_hits = cache_hits + 1
  end
  if status ~= expect then
    note(status, body)
  elseif marker and body and string.find(body, marker, 1, true) then
    note(status, body)
  end
end

function done(summary, latency, requests)
  local wrong = 0
  local hits = 0
  local seen = 0
  for _, thread in ipairs(threads) do
    wrong = wrong + (thread:get("unexpected") or 0)
    hits = hits + (thread:get("cache_hits") or 0)
    seen = seen + (thread:get("answered") or 0)
    local bad = thread:get("first_bad")
    if bad and bad ~= "" then
      io.write("BENCHBAD " .. bad .. "\n")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f, "max_us": %d, "status_errors": %d, "socket_errors": %d, "unexpected": %d, '
      .. '"cache_hits": %d, "answered": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max, e.status,
    e.connect + e.read + e.write + e.timeout, wrong, hits, seen))
end
