-- capacity_update.lua: replace a capacity request if its version is the
-- one the caller read, and bump it (CapacityRequests::update_capacity_request);
-- with outbox entries, write them too when it does. The step was decided
-- in Rust; this only compares and writes.
--
-- KEYS[1]  the requests (hash: request id -> JSON)    {p}:capacity:requests
-- KEYS[2]  their versions (hash: request id -> n)     {p}:capacity:versions
-- ARGV[1]  request id
-- ARGV[2]  expected version
-- ARGV[3]  request JSON
-- With outbox entries, also:
-- KEYS[3…6] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[7…]  entry i's endpoint list
-- ARGV[4…]  the entries, as outbox_append (prelude.lua) reads them
--
-- Returns 1 when written, 0 when the request changed or is not stored.

local current = redis.call('HGET', KEYS[2], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
if ARGV[4] then
  outbox_append({entries = KEYS[3], due = KEYS[4], state = KEYS[5], dedup = KEYS[6]}, 7, 4)
end
return 1
