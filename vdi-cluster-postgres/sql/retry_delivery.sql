-- $1 endpoint, $2 delivery id, $3 now (ms): a failed delivery, due again.
UPDATE vdi.outbox
   SET state = 'pending',
       due_at = $3
 WHERE endpoint_id = $1
   AND id = $2
   AND state = 'failed'
RETURNING 1
