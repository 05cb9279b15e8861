-- permit_release.lua: gives back a start permit or a place in the queue,
-- and records the start's sample (StartPermits::release_start_permit).
--
-- KEYS[1]  held permits (hash: id -> "since until")
-- KEYS[2]  waiting (sorted set: id by arrival number)
-- KEYS[3]  waiting leases (sorted set: id by until, ms)
-- KEYS[4]  samples (list: "millis in_flight", oldest first)
-- ARGV[1]  id
-- ARGV[2]  the sample, or '' for none
-- ARGV[3]  samples kept
--
-- Returns 1 if the id held a permit, else 0.

return permit_give_back(permit_keys(1), ARGV[1], ARGV[2], tonumber(ARGV[3]))
