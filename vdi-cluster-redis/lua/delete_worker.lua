-- delete_worker.lua: delete a worker record if its version is the expected
-- one and no dispatch is counted on it (Registry::delete_worker).
--
-- KEYS[1]  the worker (hash)               {p}:worker:{code}
-- KEYS[2]  registered workers (set)        {p}:workers
-- KEYS[3]  dispatched counts (hash)        {p}:dispatched
-- ARGV[1]  worker code
-- ARGV[2]  expected version
-- With the outbox's entries to write with the deletion (Outbox::
-- delete_worker_with_outbox), also:
-- KEYS[4…7] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[8…]  entry i's endpoint list
-- ARGV[3…]  the entries, as outbox_append (prelude.lua) reads them
--
-- Returns {'deleted'}, {'conflict'} or {'has_dispatches', count}.

local worker, workers, counts = KEYS[1], KEYS[2], KEYS[3]

if redis.call('HGET', worker, 'version') ~= ARGV[2] then
  return {'conflict'}
end
local dispatched = tonumber(redis.call('HGET', counts, ARGV[1]) or '0') or 0
if dispatched > 0 then
  return {'has_dispatches', tostring(dispatched)}
end

redis.call('DEL', worker)
redis.call('SREM', workers, ARGV[1])
redis.call('HDEL', counts, ARGV[1])
if ARGV[3] then
  outbox_append({entries = KEYS[4], due = KEYS[5], state = KEYS[6], dedup = KEYS[7]}, 8, 3)
end
return {'deleted'}
