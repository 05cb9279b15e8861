-- prelude.lua: helpers shared by the scripts, prepended to each one when
-- it is loaded (each step is still one EVALSHA of one script). Only local
-- functions: nothing here reads KEYS or ARGV or touches Redis on load.

-- Removes one from a count in a hash; a count that reaches zero is
-- deleted, never left at zero or below.
local function decrement(hash, field)
  local n = tonumber(redis.call('HGET', hash, field) or '0') or 0
  if n > 1 then
    redis.call('HINCRBY', hash, field, -1)
  else
    redis.call('HDEL', hash, field)
  end
end

-- Sets a count in a hash; zero deletes it.
local function store_count(hash, field, n)
  if n > 0 then
    redis.call('HSET', hash, field, n)
  else
    redis.call('HDEL', hash, field)
  end
end

-- Takes a dispatch record `record` on worker `worker` out of the worker's
-- counters: its dispatched count, the worker index and the exam's affinity.
local function uncount(record, worker, counts, index, affinity)
  decrement(counts, worker)
  redis.call('ZREM', index, worker .. ' ' .. record)
  decrement(affinity, worker)
end

-- Keeps one slot of the worker hash `worker` in use after a removal (the
-- worker may still run the session): its unrecorded count grows by one and
-- its version moves, so a heartbeat computed before this step fails its
-- compare-and-set. Nothing when the worker is not registered.
local function hold_slot(worker)
  if redis.call('HEXISTS', worker, 'version') == 1 then
    redis.call('HINCRBY', worker, 'unrecorded', 1)
    redis.call('HINCRBY', worker, 'version', 1)
  end
end

-- The optional keys of a removal (undo.lua, release.lua) after its five
-- fixed ones: the worker whose slot to hold when ARGV[2] is '1', then the
-- fencing lease when ARGV[3] (its holder) is not ''; and the index of the
-- key after them.
local function removal_options()
  local hold = nil
  local next_key = 6
  if ARGV[2] == '1' then
    hold = KEYS[6]
    next_key = 7
  end
  local lease = nil
  if ARGV[3] ~= '' then
    lease = KEYS[next_key]
    next_key = next_key + 1
  end
  return hold, lease, next_key
end

-- {tag, flat[1], flat[2], …}
local function tagged(tag, flat)
  local out = {tag}
  for i = 1, #flat do
    out[i + 1] = flat[i]
  end
  return out
end

-- The recount scripts are handed the members the caller read (KEYS[3…]);
-- `member_of(key)` is how a key appears in `members`, what the store holds
-- now. Returns nil when they are the same, else {'retry', member, …} for
-- the caller to try again with.
local function changed_since_read(members, member_of)
  local expected = {}
  for i = 3, #KEYS do
    expected[member_of(KEYS[i])] = true
  end
  local same = #members == #KEYS - 2
  if same then
    for _, m in ipairs(members) do
      if not expected[m] then
        same = false
        break
      end
    end
  end
  if same then
    return nil
  end
  return tagged('retry', members)
end

-- The version of worker `code`'s credential in hash `hash`
-- ("<version> <json>"; a bare hash, from before versions, is version 0),
-- or nil when it has none.
local function stored_credential_version(hash, code)
  local stored = redis.call('HGET', hash, code)
  if not stored then
    return nil
  end
  return tonumber(string.match(stored, '^(%d+) ')) or 0
end

-- Whether version `v` (nil: none) is the expected one ('' expects none).
local function version_is(v, expected)
  if expected == '' then
    return v == nil
  end
  return v ~= nil and v == tonumber(expected)
end

-- The refusal of a write fenced by a lease (reconcile's writes, under the
-- background lease): when `lease` (a key passed in KEYS) is given, the
-- lease hash must exist (Redis expires it with the lease) and name
-- `holder` under `token`. Returns an error reply to return at once, or nil
-- to go on with the write, in the same script.
local function fence_refusal(lease, holder, token)
  if not lease then
    return nil
  end
  local cur = redis.call('HMGET', lease, 'holder', 'token')
  if cur[1] == holder and cur[2] == token then
    return nil
  end
  return redis.error_reply('FENCED the lease is not held under this token')
end

-- The waiting room's totals in its state hash, in the order the store
-- reads them: placed, abandoned, first_placed, last_placed ('' if none).
local function queue_totals(state)
  local t = redis.call('HMGET', state, 'placed', 'abandoned', 'first_placed', 'last_placed')
  return { t[1] or '0', t[2] or '0', t[3] or '', t[4] or '' }
end

-- `user`'s place in a queue as {1, position, enqueued_at, last_seen,
-- totals…}, recording `now` as last seen; nil when not queued.
local function queue_place(order, entries, state, user, now)
  local rank = redis.call('ZRANK', order, user)
  if not rank then
    return nil
  end
  local enqueued, seen = string.match(redis.call('HGET', entries, user) or '', '^(%d+) (%d+)$')
  enqueued = enqueued or now
  if not seen or tonumber(seen) < tonumber(now) then
    seen = now
  end
  redis.call('HSET', entries, user, enqueued .. ' ' .. seen)
  local out = { 1, rank + 1, enqueued, seen }
  for _, v in ipairs(queue_totals(state)) do
    out[#out + 1] = v
  end
  return out
end

-- Removes `user` from a queue (a claim on them stays, for its promoter to
-- learn that they left); the exam leaves the set of queued exams when its
-- queue empties. Returns true if removed.
local function queue_remove(order, entries, exams, exam, user)
  if redis.call('ZREM', order, user) == 0 then
    return false
  end
  redis.call('HDEL', entries, user)
  if redis.call('ZCARD', order) == 0 then
    redis.call('SREM', exams, exam)
  end
  return true
end

-- Appends outbox entries (Outbox::append_outbox, and the writes that carry
-- their events' entries). `k` names the outbox keys {entries, due, state,
-- dedup}; entry i's endpoint list is KEYS[first_key + i - 1]. ARGV from
-- `first_arg`: the count, then per entry: id, endpoint, de-duplication
-- key, due (ms), the entry (JSON). An entry whose (endpoint, key) was
-- written before is skipped. Returns how many were written.
local function outbox_append(k, first_key, first_arg)
  local n = tonumber(ARGV[first_arg]) or 0
  local written = 0
  for i = 1, n do
    local a = first_arg + 1 + (i - 1) * 5
    local id, endpoint, dedup = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    if redis.call('HSETNX', k.dedup, endpoint .. '\n' .. dedup, id) == 1 then
      redis.call('HSET', k.entries, id, ARGV[a + 4])
      redis.call('HSET', k.state, id, 'pending')
      redis.call('ZADD', k.due, ARGV[a + 3], id)
      redis.call('LPUSH', KEYS[first_key + i - 1], id)
      written = written + 1
    end
  end
  return written
end

-- Appends a session's disruption ledger entries (DisruptionLedger): the
-- session's ledger hash `ledger` (entry id -> JSON) and the exam's set of
-- students with entries `users`. ARGV from `first_arg`: the student, the
-- count, then per entry: id, the entry (JSON). An entry whose id the
-- session has already is skipped. Returns how many were written.
local function ledger_append(ledger, users, first_arg)
  local user = ARGV[first_arg]
  local n = tonumber(ARGV[first_arg + 1]) or 0
  local written = 0
  for i = 1, n do
    local a = first_arg + 2 + (i - 1) * 2
    written = written + redis.call('HSETNX', ledger, ARGV[a], ARGV[a + 1])
  end
  if written > 0 then
    redis.call('SADD', users, user)
  end
  return written
end

-- A worker's start permits (StartPermits): `p` names its keys {held
-- (hash: id -> "since until"), waiting (sorted set: id by arrival),
-- leases (sorted set: waiting id by until, ms), samples (list: "millis
-- in_flight", oldest first)}.

-- Drops the permits and places whose lease ended at `now` (ms).
local function permits_expire(p, now)
  local all = redis.call('HGETALL', p.held)
  for i = 1, #all, 2 do
    local until_ms = tonumber(string.match(all[i + 1], ' (%d+)$'))
    if until_ms <= now then
      redis.call('HDEL', p.held, all[i])
    end
  end
  local gone = redis.call('ZRANGEBYSCORE', p.leases, '-inf', now)
  for _, w in ipairs(gone) do
    redis.call('ZREM', p.waiting, w)
    redis.call('ZREM', p.leases, w)
  end
end

-- Gives back `id`'s permit or place and, with a `sample` ('' for none),
-- appends it to the last starts, keeping the newest `keep`. Returns 1 if
-- `id` held a permit, else 0.
local function permit_give_back(p, id, sample, keep)
  local was_held = redis.call('HDEL', p.held, id)
  redis.call('ZREM', p.waiting, id)
  redis.call('ZREM', p.leases, id)
  if sample ~= '' then
    redis.call('RPUSH', p.samples, sample)
    if keep < 1 then
      redis.call('DEL', p.samples)
    else
      redis.call('LTRIM', p.samples, -keep, -1)
    end
  end
  return was_held
end

-- The permit keys passed from KEYS[first] on, in the order above.
local function permit_keys(first)
  return {held = KEYS[first], waiting = KEYS[first + 1], leases = KEYS[first + 2],
          samples = KEYS[first + 3]}
end

-- The permit a step that ends a reservation gives back (confirm.lua,
-- undo.lua): `spec` is '' for none, else "keep" or "keep millis
-- in_flight" (the start's sample), the keys from KEYS[first]. Returns the
-- index of the next key.
local function permit_return(first, id, spec)
  if spec == nil or spec == '' then
    return first
  end
  local keep, sample = string.match(spec, '^(%d+) ?(.*)$')
  permit_give_back(permit_keys(first), id, sample, tonumber(keep))
  return first + 4
end

-- Grants `id` a permit (compare-and-reserve's, reserve.lua) only when,
-- once expired ones are dropped, fewer than `limit` are held and nobody
-- waits. Returns the permits held with it, or nil.
local function permit_grant_if_free(p, id, limit, now, until_ms)
  permits_expire(p, tonumber(now))
  local in_flight = redis.call('HLEN', p.held)
  if in_flight >= limit or redis.call('ZCARD', p.waiting) > 0 then
    return nil
  end
  redis.call('HSET', p.held, id, now .. ' ' .. until_ms)
  return in_flight + 1
end
