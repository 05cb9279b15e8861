-- put_worker_credential.lua: compare-and-set of a worker's own credential
-- on its version (Credentials::put_worker_credential).
--
-- KEYS[1]  worker credentials (hash: code -> "<version> <json>")
--          {p}:worker-credentials
-- ARGV[1]  the worker's code
-- ARGV[2]  expected version, or '' when none may be stored
-- ARGV[3]  the credential as JSON
--
-- Returns {1, new version} when written, {0, stored version or -1 when
-- none} when the stored version is not the expected one (nothing written).

local v = stored_credential_version(KEYS[1], ARGV[1])
if not version_is(v, ARGV[2]) then
  return {0, v or -1}
end
local next = (v or 0) + 1
redis.call('HSET', KEYS[1], ARGV[1], next .. ' ' .. ARGV[3])
return {1, next}
