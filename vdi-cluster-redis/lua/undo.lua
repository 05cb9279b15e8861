-- undo.lua: remove a reservation that was never confirmed, with its
-- counters (DispatchStore::undo).
-- Shared helpers (decrement, uncount, changed_since_read, …) come from
-- lua/prelude.lua, prepended when the script is loaded.
--
-- KEYS[1]  dispatch record (hash)          {p}:dispatch:exam:{e}:user:{u}
-- KEYS[2]  dispatched counts (hash)        {p}:dispatched
-- KEYS[3]  worker index (sorted set)       {p}:index:worker-dispatches
-- KEYS[4]  the exam's dispatch keys (set)  {p}:sticky:exam:{e}:sessions
-- KEYS[5]  the exam's affinity (hash)      {p}:sticky:exam:{e}:affinity
-- ARGV[1]  dispatch id that must be the stored one, still 'reserved'
--
-- Returns 1 if the reservation was removed, 0 if there was nothing to undo.

local record, counts, index, sessions, affinity = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local cur = redis.call('HMGET', record, 'id', 'state', 'worker')
if cur[1] ~= ARGV[1] or cur[2] ~= 'reserved' or not cur[3] then
  return 0
end

redis.call('DEL', record)
redis.call('SREM', sessions, record)
uncount(record, cur[3], counts, index, affinity)
return 1
