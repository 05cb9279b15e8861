-- permit_read.lua: a worker's unexpired start permits and queue and its
-- last starts, as one view (StartPermits::start_queue).
--
-- KEYS[1]  held permits (hash: id -> "since until")
-- KEYS[2]  waiting (sorted set: id by arrival number)
-- KEYS[3]  waiting leases (sorted set: id by until, ms)
-- KEYS[4]  samples (list: "millis in_flight", oldest first)
-- ARGV[1]  now (ms)
--
-- Returns {held (flat id, "since until" pairs), waiting ids in order,
-- samples}.

local now = tonumber(ARGV[1])
local held = redis.call('HGETALL', KEYS[1])
local waiting = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local until_ms = tonumber(redis.call('ZSCORE', KEYS[3], id))
  if until_ms and until_ms > now then
    waiting[#waiting + 1] = id
  end
end
return {held, waiting, redis.call('LRANGE', KEYS[4], 0, -1)}
