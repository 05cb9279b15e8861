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
-- With the outbox's entries to write with the confirmation (Outbox::
-- confirm_with_outbox: a re-dispatch's session.migrated, and the
-- disruption ledger's entries), also:
-- KEYS[4…7] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[8…]  entry i's endpoint list (n entries)
-- KEYS[8+n], KEYS[9+n]  the session's ledger hash and the exam's ledger
--           students set
-- ARGV[7…]  the n entries, as outbox_append (prelude.lua) reads them
-- ARGV[8+5n…] the ledger's entries, as ledger_append (prelude.lua) reads
--           them
--
-- Returns {} when there is nothing to confirm, else the updated record as
-- {field, value, …}.

local record, sticky, sticky_until = KEYS[1], KEYS[2], KEYS[3]

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
if ARGV[7] then
  outbox_append({entries = KEYS[4], due = KEYS[5], state = KEYS[6], dedup = KEYS[7]}, 8, 7)
  local n = tonumber(ARGV[7]) or 0
  ledger_append(KEYS[8 + n], KEYS[9 + n], 8 + 5 * n)
end

return redis.call('HGETALL', record)
