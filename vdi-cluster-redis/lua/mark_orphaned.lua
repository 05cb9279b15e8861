-- mark_orphaned.lua: mark a dispatch orphaned, if it is still the one named
-- (DispatchStore::mark_orphaned). Counters are unchanged: the record stays.
--
-- KEYS[1]  dispatch record (hash)          {p}:dispatch:exam:{e}:user:{u}
-- ARGV[1]  dispatch id that must be the stored one
--
-- Returns 1 if marked, 0 if the record is gone or is another dispatch.

if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'orphaned')
return 1
