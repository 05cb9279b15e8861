-- $1 exam, $2 user, $3 dispatch id, $4 worker, $5 reserved_at (ms),
-- $6 the dispatch record, $7 the dispatch id to supersede (or NULL)
SELECT outcome, dispatch, superseded, slots_left
  FROM vdi.compare_and_reserve($1, $2, $3, $4, $5, $6, $7)
