-- outbox_finish.lua: record an attempt on a leased delivery
-- (Outbox::finish_delivery).
--
-- KEYS[1]  entries (hash id → JSON)             {p}:outbox:entries
-- KEYS[2]  due deliveries (zset id → ms)         {p}:outbox:due
-- KEYS[3]  delivery states (hash id → state)     {p}:outbox:state
-- KEYS[4]  de-duplication (hash)                 {p}:outbox:dedup
-- KEYS[5]  delivery lease tokens (hash)          {p}:outbox:tokens
-- KEYS[6]  attempts (hash id → JSON lines)       {p}:outbox:attempts
-- KEYS[7]  consecutive failures (hash endpoint → n) {p}:outbox:failures
-- KEYS[8]  finished deliveries (zset id → ms of the last attempt)
--                                                {p}:outbox:finished
-- KEYS[9…] the failing entries' endpoint lists
-- ARGV[1]  delivery id
-- ARGV[2]  its lease token
-- ARGV[3]  the attempt (JSON, one line)
-- ARGV[4]  next state: pending, delivered or failed
-- ARGV[5]  due (ms) when pending
-- ARGV[6]  the delivery's endpoint
-- ARGV[7]  '1' if the attempt succeeded
-- ARGV[8]  when the attempt started (ms)
-- ARGV[9]  consecutive failures at which the failing entries are written,
--          or '' for none
-- ARGV[10…] the failing entries, as outbox_append (prelude.lua) reads them
--
-- Returns the endpoint's consecutive failures after the attempt, or nil
-- (nothing written) when the delivery is not leased under ARGV[2].

local id = ARGV[1]
if redis.call('HGET', KEYS[3], id) ~= 'leased' or redis.call('HGET', KEYS[5], id) ~= ARGV[2] then
  return false
end
local before = redis.call('HGET', KEYS[6], id) or ''
redis.call('HSET', KEYS[6], id, before .. ARGV[3] .. '\n')
redis.call('HSET', KEYS[3], id, ARGV[4])
if ARGV[4] == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[5], id)
  redis.call('ZREM', KEYS[8], id)
else
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[8], ARGV[8], id)
end
local failures = 0
if ARGV[7] == '1' then
  redis.call('HDEL', KEYS[7], ARGV[6])
else
  failures = redis.call('HINCRBY', KEYS[7], ARGV[6], 1)
end
if ARGV[9] ~= '' and failures == tonumber(ARGV[9]) then
  outbox_append({entries = KEYS[1], due = KEYS[2], state = KEYS[3], dedup = KEYS[4]}, 9, 10)
end
return failures
