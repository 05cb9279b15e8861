-- $1 now (ms), $2 the leases' end (ms), $3 at most this many.
-- Rows another deliverer is leasing right now are skipped; a row leased
-- and committed meanwhile is re-checked (its due_at is the new lease's end).
WITH due AS (
    SELECT id
      FROM vdi.outbox
     WHERE state IN ('pending', 'leased')
       AND due_at <= $1
     ORDER BY due_at
     LIMIT $3
       FOR UPDATE SKIP LOCKED
)
UPDATE vdi.outbox o
   SET state = 'leased',
       due_at = $2,
       lease_token = nextval('vdi.outbox_lease_tokens')
  FROM due
 WHERE o.id = due.id
RETURNING o.lease_token, o.entry, o.attempts
