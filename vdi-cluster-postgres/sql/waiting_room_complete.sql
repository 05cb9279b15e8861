-- $1 exam, $2 the claim's user, $3 its token, $4 now (ms)
SELECT vdi.queue_complete($1, $2, $3, $4) AS done
