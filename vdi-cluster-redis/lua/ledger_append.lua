-- ledger_append.lua: write a session's disruption ledger entries
-- (DisruptionLedger::append_disruptions, for a cause that writes nothing
-- else).
--
-- KEYS[1]  the session's ledger (hash)     {p}:ledger:exam:{e}:user:{u}
-- KEYS[2]  the exam's students (set)       {p}:ledger:exam:{e}:users
-- ARGV     as ledger_append (prelude.lua) reads them from ARGV[1]: the
--          student, the count, then id and JSON per entry
--
-- Returns how many entries were new.

return ledger_append(KEYS[1], KEYS[2], 1)
