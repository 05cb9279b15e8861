-- $1 worker, $2 record, $3 max_sessions, $4 unrecorded, $5 accepting,
-- $6 reported_active, $7 expected version, $8 the record's entries,
-- $9 the lost dispatches (see vdi.put_worker_releasing_lost)
SELECT outcome, version, released
  FROM vdi.put_worker_releasing_lost($1, $2, $3, $4, $5, $6, $7, $8, $9)
