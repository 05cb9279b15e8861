-- waiting_room_complete.lua: if the claim is still the exam's claim, clears
-- it and removes the claimed student, counting them placed
-- (WaitingRoom::complete_queue_claim).
--
-- KEYS[1]  the room's order (sorted set)
-- KEYS[2]  the room's entries (hash)
-- KEYS[3]  the room's state (hash)
-- KEYS[4]  the exams with someone waiting (set)
-- ARGV[1]  exam id
-- ARGV[2]  the claim's user id
-- ARGV[3]  the claim's token
-- ARGV[4]  now (ms)
--
-- Returns 1 when placed, 2 when the student had left (claim cleared,
-- nothing counted), 0 when the claim is no longer held.

local c = redis.call('HMGET', KEYS[3], 'claim_user', 'claim_token')
if c[1] ~= ARGV[2] or c[2] ~= ARGV[3] then
  return 0
end
redis.call('HDEL', KEYS[3], 'claim_user', 'claim_token', 'claim_until')
if not queue_remove(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2]) then
  return 2
end
redis.call('HINCRBY', KEYS[3], 'placed', 1)
redis.call('HSETNX', KEYS[3], 'first_placed', ARGV[4])
redis.call('HSET', KEYS[3], 'last_placed', ARGV[4])
return 1
