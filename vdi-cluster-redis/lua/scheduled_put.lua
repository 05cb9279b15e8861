-- scheduled_put.lua: compare-and-set of one scheduled action
-- (ScheduledActions::put_scheduled), keeping the index of open actions in
-- the same step. Whether the action may move was decided in Rust; this
-- only compares the version and writes.
--
-- KEYS[1]  the actions (hash: id -> "<version> <json>")  {p}:scheduled
-- KEYS[2]  the open ones (sorted set: id by due time, ms) {p}:scheduled:open
-- ARGV[1]  id
-- ARGV[2]  expected version ('' : only if there is none)
-- ARGV[3]  the action (JSON)
-- ARGV[4]  '1' if the action is open (pending or firing), else '0'
-- ARGV[5]  its due time (ms)
--
-- Returns {1, new version} when written, {0, current version (-1: none)}
-- otherwise.

local stored = redis.call('HGET', KEYS[1], ARGV[1])
local current = nil
if stored then
  current = tonumber(string.match(stored, '^(%d+) '))
end
local expected = ARGV[2]
if (expected == '' and current ~= nil)
    or (expected ~= '' and current ~= tonumber(expected)) then
  return { 0, current or -1 }
end
local version = (current or 0) + 1
redis.call('HSET', KEYS[1], ARGV[1], version .. ' ' .. ARGV[3])
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return { 1, version }
