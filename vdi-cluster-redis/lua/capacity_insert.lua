-- capacity_insert.lua: store a capacity request at version 1 if none with
-- its id is stored (CapacityRequests::insert_capacity_request); with
-- outbox entries, write them too when it does. Which request to store was
-- decided in Rust; this only checks and writes.
--
-- KEYS[1]  the requests (hash: request id -> JSON)    {p}:capacity:requests
-- KEYS[2]  their versions (hash: request id -> n)     {p}:capacity:versions
-- ARGV[1]  request id
-- ARGV[2]  request JSON
-- With outbox entries, also:
-- KEYS[3…6] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[7…]  entry i's endpoint list
-- ARGV[3…]  the entries, as outbox_append (prelude.lua) reads them
--
-- Returns 1 when stored, 0 when a request with the id exists.

if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], 1)
if ARGV[3] then
  outbox_append({entries = KEYS[3], due = KEYS[4], state = KEYS[5], dedup = KEYS[6]}, 7, 3)
end
return 1
