-- waiting_room_touch.lua: a queued student's position, recording that they
-- were seen (WaitingRoom::touch_queued).
--
-- KEYS[1]  the room's order (sorted set)
-- KEYS[2]  the room's entries (hash)
-- KEYS[3]  the room's state (hash)
-- ARGV[1]  user id
-- ARGV[2]  now (ms)
--
-- Returns {1, position, enqueued_at, last_seen, placed, abandoned,
-- first_placed, last_placed} when queued, else {0, students queued}.

local place = queue_place(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
if place then
  return place
end
return { 0, redis.call('ZCARD', KEYS[1]) }
