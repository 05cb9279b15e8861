-- $1 exam, $2 user, $3 seen before (ms), $4 now (ms)
SELECT vdi.queue_abandon($1, $2, $3, $4) AS done
