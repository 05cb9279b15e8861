-- permit_release.lua: gives back a start permit or a place in the queue,
-- and records the start's sample (StartPermits::release_start_permit).
--
-- KEYS[1]  held permits (hash: id -> "since until")
-- KEYS[2]  waiting (sorted set: id by arrival number)
-- KEYS[3]  waiting leases (sorted set: id by until, ms)
-- KEYS[4]  samples (list: "millis in_flight", oldest first)
-- ARGV[1]  id
-- ARGV[2]  the sample, or '' for none
-- ARGV[3]  samples kept
--
-- Returns 1 if the id held a permit, else 0.

local was_held = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local keep = tonumber(ARGV[3])
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[4], ARGV[2])
  if keep < 1 then
    redis.call('DEL', KEYS[4])
  else
    redis.call('LTRIM', KEYS[4], -keep, -1)
  end
end
return was_held
