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
-- KEYS[6]  optional: the worker whose slot to hold (hash), with ARGV[2]
--                                          {p}:worker:{code}
-- KEYS[6|7] optional: the fencing lease (hash), with ARGV[3]
--                                          {p}:lease:{name}
-- ARGV[1]  dispatch id that must be the stored one, still 'reserved'
-- ARGV[2]  '1' to hold a slot of the worker in KEYS[6] when removing, else ''
-- ARGV[3]  the fencing lease's holder, or '' when unfenced
-- ARGV[4]  the fencing lease's token
-- ARGV[5]  the start permit to give back under ARGV[1], as permit_return
--          (prelude.lua) reads it: '' for none, else "keep"; given back
--          whether or not there is a reservation to undo (not when fenced)
-- KEYS[next…next+3] with a permit to give back, after the optional keys
--          above: the worker's start permits {held, waiting, waiting
--          leases, samples}
--
-- Refuses with a FENCED error, writing nothing, when KEYS[6] is given and
-- that lease is not held by ARGV[3] under token ARGV[4].
-- Returns 1 if the reservation was removed, 0 if there was nothing to undo.

local record, counts, index, sessions, affinity = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local hold, lease, next_key = removal_options()
local refused = fence_refusal(lease, ARGV[3], ARGV[4])
if refused then
  return refused
end
permit_return(next_key, ARGV[1], ARGV[5])

local cur = redis.call('HMGET', record, 'id', 'state', 'worker')
if cur[1] ~= ARGV[1] or cur[2] ~= 'reserved' or not cur[3] then
  return 0
end

redis.call('DEL', record)
redis.call('SREM', sessions, record)
uncount(record, cur[3], counts, index, affinity)
if hold then
  hold_slot(hold)
end
return 1
