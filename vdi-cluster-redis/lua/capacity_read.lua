-- capacity_read.lua: every capacity request with its version, as one view
-- (CapacityRequests::capacity_requests).
--
-- KEYS[1]  the requests (hash: request id -> JSON)    {p}:capacity:requests
-- KEYS[2]  their versions (hash: request id -> n)     {p}:capacity:versions
--
-- Returns a flat list: version, JSON, version, JSON, ...

local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  out[#out + 1] = redis.call('HGET', KEYS[2], all[i]) or '0'
  out[#out + 1] = all[i + 1]
end
return out
