-- ledger_close.lua: close a session's open interruption if it is still
-- the one given (DisruptionLedger::close_interruption): a newer one of the
-- same kind stays.
--
-- KEYS[1]  the session's open interruptions (hash)
--          {p}:ledger:open:exam:{e}:user:{u}
-- ARGV[1]  its kind
-- ARGV[2]  the interruption (JSON, as written)
--
-- Returns 1 if it was removed, else 0.

if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
