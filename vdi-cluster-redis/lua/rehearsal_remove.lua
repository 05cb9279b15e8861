-- rehearsal_remove.lua: delete an exam's rehearsal record if its version
-- is the one the caller read (Rehearsals::remove_rehearsal), so a write
-- that came after that read is kept. Which records go (a cancelled exam's)
-- is decided in Rust; this only compares and deletes.
--
-- KEYS[1]  the records (hash: exam id -> "<version> <json>")  {p}:rehearsals
-- ARGV[1]  exam id
-- ARGV[2]  expected version
--
-- Returns 1 when deleted, 0 when none is stored or its version is another.

local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then
  return 0
end
if tonumber(string.match(stored, '^(%d+) ')) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
