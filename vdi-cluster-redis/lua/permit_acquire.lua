-- permit_acquire.lua: takes or renews a start permit on a worker, or a
-- place in its queue (StartPermits::acquire_start_permit). Expired
-- permits and places are dropped first; a permit is granted only while the
-- permits held plus the waiters ahead are fewer than the limit.
--
-- KEYS[1]  held permits (hash: id -> "since until")
-- KEYS[2]  waiting (sorted set: id by arrival number)
-- KEYS[3]  waiting leases (sorted set: id by until, ms)
-- KEYS[4]  arrival counter (string)
-- ARGV[1]  id
-- ARGV[2]  limit
-- ARGV[3]  now (ms)
-- ARGV[4]  until (ms)
--
-- Returns {granted (0|1), position, in_flight}.

local held, waiting, leases = KEYS[1], KEYS[2], KEYS[3]
local id, limit, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

permits_expire({held = held, waiting = waiting, leases = leases}, now)

local in_flight = redis.call('HLEN', held)
local mine = redis.call('HGET', held, id)
if mine then
  local since = string.match(mine, '^(%d+) ')
  redis.call('HSET', held, id, since .. ' ' .. ARGV[4])
  return {1, 0, in_flight}
end
if not redis.call('ZSCORE', waiting, id) then
  redis.call('ZADD', waiting, redis.call('INCR', KEYS[4]), id)
end
redis.call('ZADD', leases, ARGV[4], id)
local position = redis.call('ZRANK', waiting, id)
if in_flight + position < limit then
  redis.call('ZREM', waiting, id)
  redis.call('ZREM', leases, id)
  redis.call('HSET', held, id, ARGV[3] .. ' ' .. ARGV[4])
  return {1, 0, in_flight + 1}
end
return {0, position, in_flight}
