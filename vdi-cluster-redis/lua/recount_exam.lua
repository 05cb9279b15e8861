-- recount_exam.lua: check one exam's affinity counts against its dispatch
-- records, and repair them when asked (DispatchStore::recount).
-- Shared helpers (decrement, uncount, changed_since_read, …) come from
-- lua/prelude.lua, prepended when the script is loaded.
--
-- The caller read the exam's dispatch keys beforehand and passes them; if
-- the set changed since, nothing is judged and the current members are
-- returned so the caller can try again with them.
--
-- KEYS[1]  the exam's affinity (hash)      {p}:sticky:exam:{e}:affinity
-- KEYS[2]  the exam's dispatch keys (set)  {p}:sticky:exam:{e}:sessions
-- KEYS[3…] the exam's dispatch records
-- ARGV[1]  '1' to repair
--
-- Returns {'retry', member, …} when the set differs from KEYS[3…], else
-- {'ok', checked, stale, worker, stored, actual, …}: how many counters
-- exist or should exist, set members whose record is gone (removed when
-- repairing), then one triple per counter that is wrong.

local affinity, sessions = KEYS[1], KEYS[2]
local repair = ARGV[1] == '1'

local members = redis.call('SMEMBERS', sessions)
local retry = changed_since_read(members, function(key) return key end)
if retry then
  return retry
end

local actual, stale = {}, 0
for i = 3, #KEYS do
  local w = redis.call('HGET', KEYS[i], 'worker')
  if w then
    actual[w] = (actual[w] or 0) + 1
  else
    stale = stale + 1
    if repair then
      redis.call('SREM', sessions, KEYS[i])
    end
  end
end

local stored = {}
local flat = redis.call('HGETALL', affinity)
for i = 1, #flat, 2 do
  stored[flat[i]] = tonumber(flat[i + 1]) or 0
end

local out = {'ok', '0', tostring(stale)}
local checked = 0
local function check(w)
  local s, a = stored[w] or 0, actual[w] or 0
  checked = checked + 1
  if s ~= a then
    out[#out + 1] = w
    out[#out + 1] = tostring(s)
    out[#out + 1] = tostring(a)
  end
  if repair and (s ~= a or a == 0) then
    store_count(affinity, w, a)
  end
end
for w in pairs(stored) do
  check(w)
end
for w in pairs(actual) do
  if stored[w] == nil then
    check(w)
  end
end
out[2] = tostring(checked)
return out
