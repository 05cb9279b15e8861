-- claim_worker.lua: a join in one step — count one use of a join token and
-- write the joining worker's credential, or change nothing
-- (Credentials::claim_worker).
--
-- KEYS[1]  the join token (hash: json, expires_at, max_uses, uses, and
--          worker when bound) {p}:join-token:{id}
-- KEYS[2]  worker credentials (hash: code -> "<version> <json>")
--          {p}:worker-credentials
-- ARGV[1]  now, milliseconds on the control plane's clock
-- ARGV[2]  the worker's code
-- ARGV[3]  '1' when only a token bound to this code may be used
-- ARGV[4]  expected credential version, or '' when none may be stored
-- ARGV[5]  the credential as JSON
--
-- Returns {'claimed', token json, uses, new version}; {'refused', token
-- json, uses} when the token is expired, used up or bound elsewhere (or
-- unbound under ARGV[3]), {'refused'} when it is gone; {'conflict', stored
-- version or -1} when the credential's version is not the expected one.

local t = redis.call('HMGET', KEYS[1], 'json', 'expires_at', 'max_uses', 'uses', 'worker')
if not t[1] then
  return {'refused'}
end
local scope_ok
if t[5] then
  scope_ok = t[5] == ARGV[2]
else
  scope_ok = ARGV[3] ~= '1'
end
if tonumber(t[2]) <= tonumber(ARGV[1]) or tonumber(t[4]) >= tonumber(t[3]) or not scope_ok then
  return {'refused', t[1], tonumber(t[4])}
end
local v = stored_credential_version(KEYS[2], ARGV[2])
if not version_is(v, ARGV[4]) then
  return {'conflict', v or -1}
end
local uses = redis.call('HINCRBY', KEYS[1], 'uses', 1)
local next = (v or 0) + 1
redis.call('HSET', KEYS[2], ARGV[2], next .. ' ' .. ARGV[5])
return {'claimed', t[1], uses, next}
