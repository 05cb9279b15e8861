-- outbox_lease.lua: lease due deliveries (Outbox::lease_deliveries).
--
-- KEYS[1]  due deliveries (zset id → ms)       {p}:outbox:due
-- KEYS[2]  delivery states (hash id → state)   {p}:outbox:state
-- KEYS[3]  delivery lease tokens (hash id → token) {p}:outbox:tokens
-- KEYS[4]  last delivery lease token (string)  {p}:outbox:lease-token
-- KEYS[5]  entries (hash id → JSON)            {p}:outbox:entries
-- KEYS[6]  attempts (hash id → JSON lines)     {p}:outbox:attempts
-- ARGV[1]  now (ms): pending entries due by then, and leases ended by then
-- ARGV[2]  the new leases' end (ms)
-- ARGV[3]  at most this many
--
-- Returns {{id, token, entry JSON, attempts}, …}.

local due, state, tokens, counter = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local out = {}
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  local s = redis.call('HGET', state, id)
  if s == 'pending' or s == 'leased' then
    local token = redis.call('INCR', counter)
    redis.call('HSET', state, id, 'leased')
    redis.call('HSET', tokens, id, token)
    redis.call('ZADD', due, ARGV[2], id)
    out[#out + 1] = {
      id,
      tostring(token),
      redis.call('HGET', KEYS[5], id) or '',
      redis.call('HGET', KEYS[6], id) or '',
    }
  else
    redis.call('ZREM', due, id)
  end
end
return out
