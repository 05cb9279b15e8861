-- Compare-and-set on version $6 and on the dispatched count $7; never
-- touches `dispatched`. The row lock orders it with vdi.reserve's
-- conditional increment of the same row: whichever waits re-checks its
-- WHERE on the row the other committed, so a reservation either lands first
-- (and this matches no row) or reads the `accepting` written here.
-- $1 id, $2 record, $3 max_sessions, $4 unrecorded, $5 accepting,
-- $8 reported_active
UPDATE vdi.workers w
   SET record = $2,
       version = w.version + 1,
       max_sessions = $3,
       unrecorded = $4,
       reported_active = $8,
       accepting = $5,
       updated_at = now()
 WHERE w.id = $1
   AND w.version = $6
   AND w.dispatched = $7
RETURNING w.version
