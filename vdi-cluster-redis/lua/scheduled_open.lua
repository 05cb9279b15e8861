-- scheduled_open.lua: the open scheduled actions due by an instant, by
-- due time then id, as one view (ScheduledActions::open_scheduled).
--
-- KEYS[1]  the actions (hash: id -> "<version> <json>")  {p}:scheduled
-- KEYS[2]  the open ones (sorted set: id by due time, ms) {p}:scheduled:open
-- ARGV[1]  due by (ms, or '+inf')
-- ARGV[2]  at most this many
--
-- Returns the stored "<version> <json>" of each, in order.

local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local stored = redis.call('HGET', KEYS[1], id)
  if stored then
    out[#out + 1] = stored
  end
end
return out
