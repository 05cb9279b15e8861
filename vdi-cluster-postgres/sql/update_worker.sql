-- Compare-and-set on version $6; never touches `dispatched`.
-- $1 id, $2 record, $3 max_sessions, $4 reported_active, $5 accepting
UPDATE vdi.workers w
   SET record = $2,
       version = w.version + 1,
       max_sessions = $3,
       reported_active = $4,
       accepting = $5,
       updated_at = now()
 WHERE w.id = $1
   AND w.version = $6
RETURNING w.version
