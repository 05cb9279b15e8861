-- waiting_room_read.lua: one exam's whole waiting room as one view
-- (WaitingRoom::exam_queue).
--
-- KEYS[1]  the room's order (sorted set)
-- KEYS[2]  the room's entries (hash)
-- KEYS[3]  the room's state (hash)
--
-- Returns {claim_user, claim_token, claim_until, placed, abandoned,
-- first_placed, last_placed, user1, entry1, user2, entry2, …} head first
-- ('' for a missing field).

local c = redis.call('HMGET', KEYS[3], 'claim_user', 'claim_token', 'claim_until')
local out = { c[1] or '', c[2] or '', c[3] or '' }
for _, v in ipairs(queue_totals(KEYS[3])) do
  out[#out + 1] = v
end
local users = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, user in ipairs(users) do
  out[#out + 1] = user
  out[#out + 1] = redis.call('HGET', KEYS[2], user) or ''
end
return out
