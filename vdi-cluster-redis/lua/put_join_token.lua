-- put_join_token.lua: store a new join token, refusing a duplicate id or
-- secret hash (Credentials::put_join_token).
--
-- KEYS[1]  index of join tokens (hash: token hash -> id) {p}:join-tokens
-- KEYS[2]  the join token (hash) {p}:join-token:{id}
-- ARGV[1]  token hash
-- ARGV[2]  id
-- ARGV[3]  the token as JSON
-- ARGV[4]  expires at, milliseconds
-- ARGV[5]  max uses
-- ARGV[6]  uses
-- ARGV[7]  the worker code it is bound to, or '' when unbound
--
-- Returns 1 if stored, 0 if the id or the hash is taken (nothing written).

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'json', ARGV[3], 'expires_at', ARGV[4], 'max_uses', ARGV[5], 'uses', ARGV[6])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[2], 'worker', ARGV[7])
end
return 1
