-- $1 exam, $2 user, $3 dispatch id, $4 session (or NULL), $5 now (ms),
-- $6 sticky expiry (ms)
SELECT vdi.confirm($1, $2, $3, $4, $5, $6) AS record
