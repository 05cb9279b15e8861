-- waiting_room_abandon.lua: removes a student who was last seen before a
-- cutoff and holds no live claim, and counts the abandon
-- (WaitingRoom::abandon_queued). Core chose the student; this only checks.
--
-- KEYS[1]  the room's order (sorted set)
-- KEYS[2]  the room's entries (hash)
-- KEYS[3]  the room's state (hash)
-- KEYS[4]  the exams with someone waiting (set)
-- ARGV[1]  exam id
-- ARGV[2]  user id
-- ARGV[3]  seen before (ms): the cutoff
-- ARGV[4]  now (ms)
--
-- Returns 1 when abandoned, else 0.

local entry = redis.call('HGET', KEYS[2], ARGV[2])
if not entry or not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return 0
end
local seen = tonumber(string.match(entry, ' (%d+)$') or '0')
if seen >= tonumber(ARGV[3]) then
  return 0
end
local c = redis.call('HMGET', KEYS[3], 'claim_user', 'claim_until')
if c[1] == ARGV[2] and tonumber(c[2] or '0') > tonumber(ARGV[4]) then
  return 0
end
queue_remove(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'abandoned', 1)
return 1
