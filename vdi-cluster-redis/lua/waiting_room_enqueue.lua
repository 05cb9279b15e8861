-- waiting_room_enqueue.lua: appends a student to an exam's waiting room
-- unless already queued, in which case only their last-seen time moves
-- (WaitingRoom::enqueue). Arrival numbers come from one counter, so the
-- order is the order in which enqueues ran.
--
-- KEYS[1]  the room's order (sorted set: user -> arrival number)
-- KEYS[2]  the room's entries (hash: user -> "enqueued_at last_seen")
-- KEYS[3]  the room's state (hash: claim and totals)
-- KEYS[4]  the exams with someone waiting (set of exam ids)
-- KEYS[5]  the arrival / token counter (string)
-- ARGV[1]  exam id
-- ARGV[2]  user id
-- ARGV[3]  now (ms)
--
-- Returns {joined (0|1), position, enqueued_at, last_seen, placed,
-- abandoned, first_placed, last_placed}.

local place = queue_place(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3])
if place then
  place[1] = 0
  return place
end
local seq = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[1], seq, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. ' ' .. ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
return queue_place(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3])
