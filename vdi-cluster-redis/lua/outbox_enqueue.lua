-- outbox_enqueue.lua: write outbox entries, fenced (Outbox::append_outbox).
--
-- KEYS[1]  entries (hash id → JSON)            {p}:outbox:entries
-- KEYS[2]  due deliveries (zset id → ms)        {p}:outbox:due
-- KEYS[3]  delivery states (hash id → state)    {p}:outbox:state
-- KEYS[4]  de-duplication (hash endpoint\nkey → id) {p}:outbox:dedup
-- KEYS[5…4+n]  entry i's endpoint list          {p}:outbox:endpoint:{e}
-- KEYS[5+n]  optional: the fencing lease (hash) {p}:lease:{name}
-- ARGV[1]  the fencing lease's holder, or '' (unfenced)
-- ARGV[2]  the fencing lease's token
-- ARGV[3…] the entries, as outbox_append (prelude.lua) reads them
--
-- Refuses with a FENCED error, writing nothing, when the lease is given
-- and not held by ARGV[1] under token ARGV[2].
-- Returns how many entries were new.

local n = tonumber(ARGV[3]) or 0
if ARGV[1] ~= '' then
  local refused = fence_refusal(KEYS[5 + n], ARGV[1], ARGV[2])
  if refused then
    return refused
  end
end
return outbox_append({entries = KEYS[1], due = KEYS[2], state = KEYS[3], dedup = KEYS[4]}, 5, 3)
