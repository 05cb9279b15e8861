-- mark_orphaned.lua: mark a dispatch orphaned, if it is still the one named
-- (DispatchStore::mark_orphaned). Counters are unchanged: the record stays.
--
-- KEYS[1]  dispatch record (hash)          {p}:dispatch:exam:{e}:user:{u}
-- KEYS[2]  optional: the fencing lease (hash) {p}:lease:{name}
-- ARGV[1]  dispatch id that must be the stored one
-- ARGV[2]  the fencing lease's holder (with KEYS[2])
-- ARGV[3]  the fencing lease's token (with KEYS[2])
--
-- Refuses with a FENCED error, writing nothing, when KEYS[2] is given and
-- that lease is not held by ARGV[2] under token ARGV[3].
-- Returns 1 if marked, 0 if the record is gone or is another dispatch.

local refused = fence_refusal(KEYS[2], ARGV[2], ARGV[3])
if refused then
  return refused
end
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'orphaned')
return 1
