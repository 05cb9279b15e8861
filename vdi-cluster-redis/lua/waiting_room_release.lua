-- waiting_room_release.lua: gives a claim up, leaving the student at the
-- head, if it is still the exam's claim (WaitingRoom::release_queue_claim).
--
-- KEYS[1]  the room's state (hash)
-- ARGV[1]  the claim's user id
-- ARGV[2]  the claim's token
--
-- Returns 1 when given up, 0 when the claim was no longer held.

local c = redis.call('HMGET', KEYS[1], 'claim_user', 'claim_token')
if c[1] ~= ARGV[1] or c[2] ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], 'claim_user', 'claim_token', 'claim_until')
return 1
