-- release_lost.lua: a restarted worker's heartbeat writes its record and
-- releases the dispatches its report proves lost, in one step
-- (Outbox::put_worker_releasing_lost). The record is written as
-- put_worker.lua writes it, on its version; each lost dispatch is removed
-- with its counters, as release.lua removes one, only if it is still
-- stored under its id on this worker; its outbox entries are written only
-- if it is removed, and so is its open interruption (HSETNX: the first
-- of its kind is kept). A stale version writes and removes nothing, so two
-- replicas applying the same heartbeat free the slots once. Core decides
-- which dispatches are lost; this only checks and writes.
--
-- KEYS[1]  the worker (hash)               {p}:worker:{code}
-- KEYS[2]  registered workers (set)        {p}:workers
-- KEYS[3]  dispatched counts (hash)        {p}:dispatched
-- KEYS[4]  worker index (sorted set)       {p}:index:worker-dispatches
-- KEYS[5…8] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[9…] per lost dispatch i (of ARGV[7]), four keys:
--          its record (hash)               {p}:dispatch:exam:{e}:user:{u}
--          the exam's dispatch keys (set)  {p}:sticky:exam:{e}:sessions
--          the exam's affinity (hash)      {p}:sticky:exam:{e}:affinity
--          its open interruptions (hash)   {p}:ledger:open:exam:{e}:user:{u}
-- then     the endpoint lists of the record's entries, then of each lost
--          dispatch's entries, in order (outbox_append in prelude.lua)
-- ARGV[1]  worker code
-- ARGV[2]  expected version
-- ARGV[3]  the record (JSON)
-- ARGV[4]  max sessions
-- ARGV[5]  unrecorded sessions (WorkerRecord::unrecorded)
-- ARGV[6]  '1' if the worker accepts new sessions, else '0'
-- ARGV[7]  n, the number of lost dispatches
-- ARGV[8…7+n] their dispatch ids
-- ARGV[8+n…7+3n] per lost dispatch, the kind and JSON of the interruption
--          its release opens (both '' for none)
-- then     the record's entries, then each lost dispatch's entries, each
--          block as outbox_append reads it (a count, then five per entry)
--
-- Returns {'written', new version, i, …} with the positions (1-based) of
-- the lost dispatches removed, or {'conflict', stored version or ''}.

local worker, workers, counts, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local box = {entries = KEYS[5], due = KEYS[6], state = KEYS[7], dedup = KEYS[8]}

local current = redis.call('HGET', worker, 'version')
if (current or '') ~= ARGV[2] then
  return {'conflict', current or ''}
end

redis.call('HSET', worker, 'record', ARGV[3], 'max', ARGV[4], 'unrecorded', ARGV[5], 'accepting', ARGV[6])
redis.call('HINCRBY', worker, 'version', 1)
redis.call('SADD', workers, ARGV[1])

local n = tonumber(ARGV[7]) or 0
local next_key = 9 + 4 * n
local next_arg = 8 + 3 * n

-- Writes (when `write`) the block of entries at next_key / next_arg, and
-- moves past it.
local function entries_block(write)
  local count = tonumber(ARGV[next_arg]) or 0
  if write and count > 0 then
    outbox_append(box, next_key, next_arg)
  end
  next_key = next_key + count
  next_arg = next_arg + 1 + 5 * count
end

entries_block(true)
local out = {'written', redis.call('HGET', worker, 'version')}
for i = 1, n do
  local record = KEYS[5 + 4 * i]
  local cur = redis.call('HMGET', record, 'id', 'worker')
  local here = cur[1] ~= false and cur[1] == ARGV[7 + i] and cur[2] == ARGV[1]
  if here then
    redis.call('DEL', record)
    redis.call('SREM', KEYS[6 + 4 * i], record)
    uncount(record, ARGV[1], counts, index, KEYS[7 + 4 * i])
    local kind = ARGV[6 + n + 2 * i]
    if kind ~= '' then
      redis.call('HSETNX', KEYS[8 + 4 * i], kind, ARGV[7 + n + 2 * i])
    end
    out[#out + 1] = tostring(i)
  end
  entries_block(here)
end
return out
