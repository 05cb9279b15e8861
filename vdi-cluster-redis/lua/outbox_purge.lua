-- outbox_purge.lua: delete finished deliveries past the retention
-- (Outbox::purge_deliveries). The caller read the candidates (the oldest
-- of KEYS[6] before ARGV[1]) and their endpoints and keys; each is checked
-- again here, so one made pending meanwhile (an admin's retry) stays.
--
-- KEYS[1]  entries (hash id → JSON)               {p}:outbox:entries
-- KEYS[2]  delivery states (hash id → state)      {p}:outbox:state
-- KEYS[3]  de-duplication (hash endpoint\nkey → id) {p}:outbox:dedup
-- KEYS[4]  delivery lease tokens (hash)           {p}:outbox:tokens
-- KEYS[5]  attempts (hash id → JSON lines)        {p}:outbox:attempts
-- KEYS[6]  finished deliveries (zset id → ms)     {p}:outbox:finished
-- KEYS[7…] candidate i's endpoint list            {p}:outbox:endpoint:{id}
-- ARGV[1]  before (ms)
-- ARGV[2…] per candidate: its id, endpoint and de-duplication key
--
-- Returns how many deliveries were deleted.

local before = tonumber(ARGV[1])
local purged = 0
for i = 1, (#ARGV - 1) / 3 do
  local a = 2 + (i - 1) * 3
  local id, endpoint, dedup = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local at = tonumber(redis.call('ZSCORE', KEYS[6], id) or '')
  local state = redis.call('HGET', KEYS[2], id)
  if at and at < before and (state == 'delivered' or state == 'failed') then
    local field = endpoint .. '\n' .. dedup
    if redis.call('HGET', KEYS[3], field) == id then
      redis.call('HDEL', KEYS[3], field)
    end
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[5], id)
    redis.call('ZREM', KEYS[6], id)
    redis.call('LREM', KEYS[6 + i], 0, id)
    purged = purged + 1
  elseif state ~= 'delivered' and state ~= 'failed' then
    -- Pending again (or gone): its next finish records it anew.
    redis.call('ZREM', KEYS[6], id)
  end
end
return purged
