-- $1 exam, $2 the claim's user, $3 its token
SELECT vdi.queue_release($1, $2, $3) AS done
