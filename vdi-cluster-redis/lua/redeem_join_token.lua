-- redeem_join_token.lua: count one use of a join token if it is still
-- valid (Credentials::redeem_join_token).
--
-- KEYS[1]  the join token (hash: json, expires_at, max_uses, uses)
--          {p}:join-token:{id}
-- ARGV[1]  now, milliseconds on the control plane's clock
--
-- Returns {json, uses} after the use, or nil when the token is gone,
-- expired or used up (nothing changes then).

local t = redis.call('HMGET', KEYS[1], 'json', 'expires_at', 'max_uses', 'uses')
if not t[1] then
  return nil
end
if tonumber(t[2]) <= tonumber(ARGV[1]) or tonumber(t[4]) >= tonumber(t[3]) then
  return nil
end
local uses = redis.call('HINCRBY', KEYS[1], 'uses', 1)
return {t[1], uses}
