-- confirm.lua: mark a reservation active and move the exam's sticky worker
-- to it (DispatchStore::confirm).
--
-- KEYS[1]  dispatch record (hash)          {p}:dispatch:exam:{e}:user:{u}
-- KEYS[2]  sticky worker (string)          {p}:sticky:exam:{e}:worker
-- KEYS[3]  sticky expiry (string)          {p}:sticky:exam:{e}:until
-- ARGV[1]  dispatch id that must be the stored one, still 'reserved'
-- ARGV[2]  activation time (ms, control plane's clock)
-- ARGV[3]  sticky TTL (ms; 0 removes the sticky worker)
-- ARGV[4]  sticky expiry (ms, control plane's clock)
-- ARGV[5]  '1' if ARGV[6] holds the worker's answer, '0' to clear it
-- ARGV[6]  the worker's answer (JSON)
-- ARGV[7]  the start permit to give back under ARGV[1], as permit_return
--          (prelude.lua) reads it: '' for none, else "keep" or "keep
--          millis in_flight"; given back whether or not the reservation
--          is there to confirm
-- KEYS[4…7] with a permit to give back: the worker's start permits {held,
--          waiting, waiting leases, samples}; k = 8 then, else k = 4
-- With the outbox's entries to write with the confirmation (Outbox::
-- confirm_with_outbox: a re-dispatch's session.migrated, and the
-- disruption ledger's entries), also:
-- KEYS[k…k+3] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[k+4…]  entry i's endpoint list (n entries)
-- KEYS[k+4+n], KEYS[k+5+n]  the session's ledger hash and the exam's
--           ledger students set
-- ARGV[8…]  the n entries, as outbox_append (prelude.lua) reads them
-- ARGV[9+5n…] the ledger's entries, as ledger_append (prelude.lua) reads
--           them
--
-- Returns {} when there is nothing to confirm, else the updated record as
-- {field, value, …}.

local record, sticky, sticky_until = KEYS[1], KEYS[2], KEYS[3]
local k = permit_return(4, ARGV[1], ARGV[7])

local cur = redis.call('HMGET', record, 'id', 'state', 'worker')
if cur[1] ~= ARGV[1] or cur[2] ~= 'reserved' or not cur[3] then
  return {}
end

redis.call('HSET', record, 'state', 'active', 'activatedAt', ARGV[2])
if ARGV[5] == '1' then
  redis.call('HSET', record, 'session', ARGV[6])
else
  redis.call('HDEL', record, 'session')
end

if (tonumber(ARGV[3]) or 0) > 0 then
  redis.call('SET', sticky, cur[3], 'PX', ARGV[3])
  redis.call('SET', sticky_until, ARGV[4], 'PX', ARGV[3])
else
  redis.call('DEL', sticky, sticky_until)
end
if ARGV[8] then
  outbox_append({entries = KEYS[k], due = KEYS[k + 1], state = KEYS[k + 2], dedup = KEYS[k + 3]},
    k + 4, 8)
  local n = tonumber(ARGV[8]) or 0
  ledger_append(KEYS[k + 4 + n], KEYS[k + 5 + n], 9 + 5 * n)
end

return redis.call('HGETALL', record)
