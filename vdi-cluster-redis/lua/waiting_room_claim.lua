-- waiting_room_claim.lua: claims the first student of an exam's waiting room
-- with a fresh token until a deadline, if no claim expiring after now is
-- held (WaitingRoom::claim_queue_head).
--
-- KEYS[1]  the room's order (sorted set)
-- KEYS[2]  the room's state (hash)
-- KEYS[3]  the arrival / token counter (string)
-- ARGV[1]  now (ms)
-- ARGV[2]  the claim's deadline (ms)
--
-- Returns {user, token} when claimed, else an empty array.

local head = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
if not head then
  return {}
end
local until_ms = tonumber(redis.call('HGET', KEYS[2], 'claim_until') or '0')
if until_ms > tonumber(ARGV[1]) then
  return {}
end
local token = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], 'claim_user', head, 'claim_token', token, 'claim_until', ARGV[2])
return { head, token }
