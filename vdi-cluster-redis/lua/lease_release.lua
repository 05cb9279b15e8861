-- lease_release.lua: give a lease up if the caller still holds it
-- (LeaderLease::release_lease).
--
-- KEYS[1]  the lease (hash: holder, token) {p}:lease:{name}
-- ARGV[1]  holder
-- ARGV[2]  fencing token
--
-- Returns 1 if released, 0 if the lease is gone or held by someone else.

local cur = redis.call('HMGET', KEYS[1], 'holder', 'token')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
