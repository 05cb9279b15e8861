-- rehearsal_put.lua: write an exam's rehearsal record if its version is
-- the one the caller read (0: only if none is stored), and bump it
-- (Rehearsals::put_rehearsal); with outbox entries, write them too when it
-- does. Which workers fail, and go or no-go, was decided in Rust; this
-- only compares and writes.
--
-- KEYS[1]  the records (hash: exam id -> "<version> <json>")  {p}:rehearsals
-- ARGV[1]  exam id
-- ARGV[2]  expected version (0: none stored)
-- ARGV[3]  record JSON
-- With outbox entries, also:
-- KEYS[2…5] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[6…]  entry i's endpoint list
-- ARGV[4…]  the entries, as outbox_append (prelude.lua) reads them
--
-- Returns 1 when written, 0 when the stored version is another.

local stored = redis.call('HGET', KEYS[1], ARGV[1])
local current = 0
if stored then
  current = tonumber(string.match(stored, '^(%d+) '))
end
if current ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], (current + 1) .. ' ' .. ARGV[3])
if ARGV[4] then
  outbox_append({entries = KEYS[2], due = KEYS[3], state = KEYS[4], dedup = KEYS[5]}, 6, 4)
end
return 1
