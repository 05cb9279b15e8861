-- $1 exam, $2 user, $3 dispatch id, $4 worker, $5 reserved_at (ms),
-- $6 activated_at (ms), $7 the dispatch record, $8 sticky expiry (ms)
SELECT outcome, dispatch
  FROM vdi.adopt($1, $2, $3, $4, $5, $6, $7, $8)
