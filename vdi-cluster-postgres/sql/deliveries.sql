-- $1 endpoint, $2 at most this many; newest first.
SELECT entry, state, due_at, attempts
  FROM vdi.outbox
 WHERE endpoint_id = $1
 ORDER BY seq DESC
 LIMIT $2
