-- lease_acquire.lua: take or renew a lease (LeaderLease::try_acquire).
-- Expiry is Redis's own key expiry, judged on the server's clock.
--
-- KEYS[1]  the lease (hash: holder, token) {p}:lease:{name}
-- KEYS[2]  last token issued (string)      {p}:lease-token
-- ARGV[1]  holder
-- ARGV[2]  TTL (ms)
--
-- Returns the fencing token (a new one for a new acquisition, the same one
-- for a renewal by the holder), or nil if another holder has the lease.

local lease, tokens = KEYS[1], KEYS[2]

local holder = redis.call('HGET', lease, 'holder')
if holder and holder ~= ARGV[1] then
  return false
end
if not holder then
  local token = redis.call('INCR', tokens)
  redis.call('HSET', lease, 'holder', ARGV[1], 'token', token)
end
local token = redis.call('HGET', lease, 'token')
redis.call('PEXPIRE', lease, ARGV[2])
return token
