-- lease_checkpoint.lua: save the checkpoint kept beside a lease, fenced by
-- that lease (LeaderLease::save_checkpoint). The checkpoint has no TTL: it
-- outlives the lease for whoever holds it next.
--
-- KEYS[1]  the checkpoint (string)           {p}:checkpoint:{name}
-- KEYS[2]  the fencing lease (hash)          {p}:lease:{name}
-- ARGV[1]  the checkpoint's text
-- ARGV[2]  the lease's holder
-- ARGV[3]  the lease's token
--
-- Refuses with a FENCED error, writing nothing, unless KEYS[2] exists
-- (Redis expires it with the lease) and names ARGV[2] under ARGV[3].
-- Returns 1 when saved.

local refused = fence_refusal(KEYS[2], ARGV[2], ARGV[3])
if refused then
  return refused
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
