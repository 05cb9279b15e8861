-- Compare-and-set on version $6; never touches `dispatched`.
-- $1 id, $2 record, $3 max_sessions, $4 unrecorded, $5 accepting,
-- $7 reported_active
UPDATE vdi.workers w
   SET record = $2,
       version = w.version + 1,
       max_sessions = $3,
       unrecorded = $4,
       reported_active = $7,
       accepting = $5,
       updated_at = now()
 WHERE w.id = $1
   AND w.version = $6
RETURNING w.version
