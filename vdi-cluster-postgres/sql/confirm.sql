-- $1 exam, $2 user, $3 dispatch id, $4 session (or NULL), $5 now (ms),
-- $6 sticky expiry (ms); the start permit to give back after the
-- confirmation, confirmed or not: $7 its worker (NULL: none), $8 its id,
-- $9 its sample's milliseconds and $10 starts in flight (NULL: no
-- sample), $11 samples kept.
SELECT vdi.confirm($1, $2, $3, $4, $5, $6) AS record,
       CASE WHEN $7::text IS NOT NULL
            THEN vdi.start_permit_release($7, $8, $9, $10, $11) END AS permit_held
