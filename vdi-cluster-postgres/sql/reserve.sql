-- $1 exam, $2 user, $3 dispatch id, $4 worker, $5 reserved_at (ms),
-- $6 the dispatch record, $7 the dispatch id to supersede (or NULL),
-- $8 the start permit's limit (NULL: no permit asked for), $9 its id,
-- $10 now (ms), $11 its lease end (ms). permit: the permits held with the
-- one granted with the reservation, or NULL.
SELECT r.outcome, r.dispatch, r.superseded, r.slots_left,
       CASE WHEN r.outcome = 'reserved' AND $8::integer IS NOT NULL
            THEN vdi.start_permit_grant_if_free($4, $9, $8, $10, $11) END AS permit
  FROM vdi.compare_and_reserve($1, $2, $3, $4, $5, $6, $7) r
