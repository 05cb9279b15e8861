-- release.lua: remove a session's dispatch with its counters
-- (DispatchStore::release). Idempotent.
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
-- ARGV[1]  dispatch id that must be the stored one, or '' for any
-- ARGV[2]  '1' to hold a slot of the worker in KEYS[6] when removing, else ''
-- ARGV[3]  the fencing lease's holder, or '' when unfenced
-- ARGV[4]  the fencing lease's token
--
-- Refuses with a FENCED error, writing nothing, when KEYS[6] is given and
-- that lease is not held by ARGV[3] under token ARGV[4].
-- Returns {} if nothing was removed, else the removed record as
-- {field, value, …}.

local record, counts, index, sessions, affinity = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local hold, lease = removal_options()
local refused = fence_refusal(lease, ARGV[3], ARGV[4])
if refused then
  return refused
end

local cur = redis.call('HMGET', record, 'id', 'worker')
if not cur[1] or (ARGV[1] ~= '' and cur[1] ~= ARGV[1]) then
  return {}
end

local removed = redis.call('HGETALL', record)
redis.call('DEL', record)
redis.call('SREM', sessions, record)
if cur[2] then
  uncount(record, cur[2], counts, index, affinity)
end
if hold then
  hold_slot(hold)
end
return removed
