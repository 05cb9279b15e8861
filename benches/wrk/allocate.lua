-- wrk script: every request places a new student's session.
--
--   SERVICE=$(vdi-cluster token --sub wrk --role SERVICE)
--   wrk -t2 -c64 -d20s -s benches/wrk/allocate.lua http://127.0.0.1:8080 -- "$SERVICE"
--
-- Each wrk thread numbers its students apart from the others' (thread id in
-- the user id), so no two requests name the same session. The exam id
-- rotates over ten exams. Answers other than 201/200 are counted and
-- printed at the end (503: no capacity left — give the workers more slots).

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  token = args[1]
  if token == nil or token == "" then
    error("pass the SERVICE JWT after --")
  end
  n = 0
  refused = 0
  wrk.method = "POST"
  wrk.headers["content-type"] = "application/json"
  wrk.headers["authorization"] = "Bearer " .. token
end

function request()
  n = n + 1
  local body = string.format('{"examId":"exam-%d","userId":"t%d-s%d"}', n % 10, id, n)
  return wrk.format(nil, "/api/vdi/sessions", nil, body)
end

function response(status, headers, body)
  if status ~= 201 and status ~= 200 then
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("refused")
  end
  io.write(string.format("answers other than 201/200: %d\n", total))
end
