-- adopt.lua: record a session a worker runs that has no dispatch
-- (DispatchStore::adopt). Shared helpers come from lua/prelude.lua.
--
-- Checks, in one atomic step, that the session has no dispatch record and
-- that the worker is registered, then writes the active record with every
-- counter and the exam's sticky worker. No capacity check: the session
-- already runs on the worker. It never chooses: the caller names the worker.
--
-- KEYS[1]  dispatch record (hash)          {p}:dispatch:exam:{e}:user:{u}
-- KEYS[2]  the worker (hash)               {p}:worker:{code}
-- KEYS[3]  dispatched counts (hash)        {p}:dispatched
-- KEYS[4]  worker index (sorted set)       {p}:index:worker-dispatches
-- KEYS[5]  the exam's dispatch keys (set)  {p}:sticky:exam:{e}:sessions
-- KEYS[6]  the exam's affinity (hash)      {p}:sticky:exam:{e}:affinity
-- KEYS[7]  sticky worker (string)          {p}:sticky:exam:{e}:worker
-- KEYS[8]  sticky expiry (string)          {p}:sticky:exam:{e}:until
-- ARGV[1]  worker code
-- ARGV[2]  sticky TTL (ms; 0 removes the sticky worker)
-- ARGV[3]  sticky expiry (ms, control plane's clock)
-- ARGV[4…] field, value, … of the new record (state 'active'; 'adopted'
--          '1' when core marked it adopted from the worker's report)
--
-- Returns one of
--   {'existing', field, value, …}   the session's dispatch, left in place
--   {'unknown_worker'}              no such worker; nothing written
--   {'adopted'}                     written

local record, worker, counts, index, sessions, affinity, sticky, sticky_until =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local code = ARGV[1]

if redis.call('EXISTS', record) == 1 then
  return tagged('existing', redis.call('HGETALL', record))
end
if redis.call('EXISTS', worker) == 0 then
  return {'unknown_worker'}
end

local fields = {}
for i = 4, #ARGV do
  fields[i - 3] = ARGV[i]
end
redis.call('HSET', record, unpack(fields))
redis.call('HINCRBY', counts, code, 1)
redis.call('ZADD', index, 0, code .. ' ' .. record)
redis.call('SADD', sessions, record)
redis.call('HINCRBY', affinity, code, 1)

if (tonumber(ARGV[2]) or 0) > 0 then
  redis.call('SET', sticky, code, 'PX', ARGV[2])
  redis.call('SET', sticky_until, ARGV[3], 'PX', ARGV[2])
else
  redis.call('DEL', sticky, sticky_until)
end
return {'adopted'}
