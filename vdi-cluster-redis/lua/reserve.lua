-- reserve.lua: compare-and-reserve one slot (DispatchStore::reserve).
-- Shared helpers (decrement, uncount, changed_since_read, …) come from
-- lua/prelude.lua, prepended when the script is loaded.
--
-- Checks, in one atomic step, the session's existing dispatch and the target
-- worker's stored capacity (max, unrecorded, accepting) and dispatched count,
-- then writes the reservation with every counter. It never chooses a worker:
-- the caller names it.
--
-- KEYS[1]  dispatch record (hash)          {p}:dispatch:exam:{e}:user:{u}
-- KEYS[2]  target worker (hash)            {p}:worker:{code}
-- KEYS[3]  dispatched counts (hash)        {p}:dispatched
-- KEYS[4]  worker index (sorted set)       {p}:index:worker-dispatches
-- KEYS[5]  the exam's dispatch keys (set)  {p}:sticky:exam:{e}:sessions
-- KEYS[6]  the exam's affinity (hash)      {p}:sticky:exam:{e}:affinity
-- KEYS[7…10] with a permit asked for: the worker's start permits {held,
--          waiting, waiting leases, samples} (permit_release.lua)
-- ARGV[1]  target worker code
-- ARGV[2]  id of the dispatch to supersede, or '' for none
-- ARGV[3]  '' for no start permit, else "limit now until" (ms): grant one
--          under the new dispatch's id when fewer than `limit` are held
--          and nobody waits (the limit is decided by the caller)
-- ARGV[4…] field, value, … of the new record
--
-- Returns one of
--   {'existing', field, value, …}   the session's dispatch, left in place
--   {'ended'}                       ARGV[2] names a dispatch, and the session
--                                   has none any more (released meanwhile)
--   {'not_accepting'}               no such worker, or it takes no sessions
--   {'full'}                        dispatched + unrecorded >= max
--   {'reserved', left, permit}                  reserved; `left` free slots
--                                               remain; `permit`: the permits
--                                               held with the one granted, or
--                                               '' when none was
--   {'reserved', left, permit, field, value, …} reserved, replacing this old
--                                               record

local record, worker, counts, index, sessions, affinity =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local target, supersede = ARGV[1], ARGV[2]

local existing = redis.call('HMGET', record, 'id', 'worker')
if not existing[1] and supersede ~= '' then
  return {'ended'}
end
local old_worker = nil
if existing[1] then
  if supersede ~= '' and existing[1] == supersede and existing[2] and existing[2] ~= target then
    old_worker = existing[2]
  else
    return tagged('existing', redis.call('HGETALL', record))
  end
end

local w = redis.call('HMGET', worker, 'version', 'max', 'unrecorded', 'accepting')
if not w[1] or w[4] ~= '1' then
  return {'not_accepting'}
end
local max = tonumber(w[2]) or 0
local unrecorded = tonumber(w[3]) or 0
local dispatched = tonumber(redis.call('HGET', counts, target) or '0') or 0
if dispatched + unrecorded >= max then
  return {'full'}
end

local old = {}
if old_worker then
  old = redis.call('HGETALL', record)
  redis.call('DEL', record)
  uncount(record, old_worker, counts, index, affinity)
end

local fields = {}
for i = 4, #ARGV do
  fields[i - 3] = ARGV[i]
end
redis.call('HSET', record, unpack(fields))
redis.call('HINCRBY', counts, target, 1)
redis.call('ZADD', index, 0, target .. ' ' .. record)
redis.call('SADD', sessions, record)
redis.call('HINCRBY', affinity, target, 1)
local permit = ''
if ARGV[3] ~= '' then
  local limit, now, until_ms = string.match(ARGV[3], '^(%d+) (%d+) (%d+)$')
  local id = redis.call('HGET', record, 'id')
  local granted = permit_grant_if_free(permit_keys(7), id, tonumber(limit), now, until_ms)
  if granted then
    permit = tostring(granted)
  end
end
return tagged('reserved', {tostring(max - dispatched - unrecorded - 1), permit, unpack(old)})
