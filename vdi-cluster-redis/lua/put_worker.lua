-- put_worker.lua: compare-and-set a worker record (Registry::put_worker and
-- Registry::put_worker_if_dispatched). Writes the record and the fields
-- reserve.lua checks; never touches the dispatched count.
--
-- With ARGV[7] set, the worker's dispatched count must also equal it: the
-- check and the write are one step, as reserve.lua's read of 'accepting'
-- and its increment are, so a reservation racing a transition to drained
-- or disabled either lands first (and this write conflicts) or is refused.
--
-- KEYS[1]  the worker (hash)               {p}:worker:{code}
-- KEYS[2]  registered workers (set)        {p}:workers
-- KEYS[3]  dispatched counts (hash)        {p}:dispatched
-- ARGV[1]  worker code
-- ARGV[2]  expected version, or '' for "no record yet"
-- ARGV[3]  the record (JSON)
-- ARGV[4]  max sessions
-- ARGV[5]  unrecorded sessions (WorkerRecord::unrecorded)
-- ARGV[6]  '1' if the worker accepts new sessions, else '0'
-- ARGV[7]  expected dispatched count, or '' for "not checked"
-- With the outbox's entries to write with the record (Outbox::
-- put_worker_with_outbox), also:
-- KEYS[4…7] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[8…]  entry i's endpoint list
-- ARGV[8…]  the entries, as outbox_append (prelude.lua) reads them
--
-- Returns {'written', new version} or {'conflict', stored version or ''}.

local worker, workers, counts = KEYS[1], KEYS[2], KEYS[3]

local current = redis.call('HGET', worker, 'version')
if (current or '') ~= ARGV[2] then
  return {'conflict', current or ''}
end
if ARGV[7] ~= '' then
  local dispatched = tonumber(redis.call('HGET', counts, ARGV[1]) or '0') or 0
  if dispatched ~= tonumber(ARGV[7]) then
    return {'conflict', current or ''}
  end
end

redis.call('HSET', worker, 'record', ARGV[3], 'max', ARGV[4], 'unrecorded', ARGV[5], 'accepting', ARGV[6])
redis.call('HINCRBY', worker, 'version', 1)
redis.call('SADD', workers, ARGV[1])
if ARGV[8] then
  outbox_append({entries = KEYS[4], due = KEYS[5], state = KEYS[6], dedup = KEYS[7]}, 8, 8)
end
return {'written', redis.call('HGET', worker, 'version')}
