-- recount_worker.lua: check one worker's dispatched count against its
-- dispatch records, and repair it when asked (DispatchStore::recount).
-- Shared helpers (decrement, uncount, changed_since_read, …) come from
-- lua/prelude.lua, prepended when the script is loaded.
--
-- The caller read the worker's index members beforehand and passes their
-- dispatch keys; if the index changed since, nothing is judged and the
-- current members are returned so the caller can try again with them.
--
-- KEYS[1]  dispatched counts (hash)        {p}:dispatched
-- KEYS[2]  worker index (sorted set)       {p}:index:worker-dispatches
-- KEYS[3…] the dispatch records indexed under the worker
-- ARGV[1]  worker code
-- ARGV[2]  '1' to repair
--
-- Returns {'retry', member, …} when the index differs from KEYS[3…], else
-- {'ok', stored, actual, present, stale}: the stored count, the records
-- that name the worker, '1' if the counter exists, and index entries whose
-- record is gone or names another worker (removed when repairing).

local counts, index = KEYS[1], KEYS[2]
local worker, repair = ARGV[1], ARGV[2] == '1'

local members = redis.call('ZRANGEBYLEX', index, '[' .. worker .. ' ', '(' .. worker .. '!')
local retry = changed_since_read(members, function(key) return worker .. ' ' .. key end)
if retry then
  return retry
end

local actual, stale = 0, 0
for i = 3, #KEYS do
  if redis.call('HGET', KEYS[i], 'worker') == worker then
    actual = actual + 1
  else
    stale = stale + 1
    if repair then
      redis.call('ZREM', index, worker .. ' ' .. KEYS[i])
    end
  end
end

local raw = redis.call('HGET', counts, worker)
local stored = tonumber(raw or '0') or 0
if repair and (stored ~= actual or (raw and actual == 0)) then
  store_count(counts, worker, actual)
end
return {'ok', tostring(stored), tostring(actual), raw and '1' or '0', tostring(stale)}
