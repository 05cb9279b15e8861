-- $1 worker, $2 id, $3 limit, $4 now (ms), $5 until (ms).
SELECT granted, pos, in_flight FROM vdi.start_permit_acquire($1, $2, $3, $4, $5)
