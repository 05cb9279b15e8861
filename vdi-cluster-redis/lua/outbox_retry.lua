-- outbox_retry.lua: make a failed delivery due (Outbox::retry_delivery).
-- The caller checked the entry's endpoint (entries never change).
--
-- KEYS[1]  delivery states (hash id → state)   {p}:outbox:state
-- KEYS[2]  due deliveries (zset id → ms)       {p}:outbox:due
-- ARGV[1]  delivery id
-- ARGV[2]  now (ms)
--
-- Returns 1 if it was failed and is now pending, else 0.

if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'failed' then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], 'pending')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
