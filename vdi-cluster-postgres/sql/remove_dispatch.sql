-- $1 exam, $2 user, $3 dispatch id (NULL: any), $4 only if still reserved,
-- $5 fencing lease (NULL: unfenced), $6 its holder, $7 its token,
-- $8 the worker whose slot a removal holds (NULL: none), $9 the worker of
-- a start permit to give back under $10 after the removal, removed or not
-- (NULL: none).
-- held = false: the fence refused the write and nothing was removed.
WITH f AS MATERIALIZED (SELECT vdi.fence_holds($5, $6, $7) AS held)
SELECT f.held AS held,
       CASE WHEN f.held THEN vdi.remove_dispatch($1, $2, $3, $4, $8) END AS record,
       CASE WHEN f.held AND $9::text IS NOT NULL
            THEN vdi.start_permit_release($9, $10, NULL, NULL, 0) END AS permit_held
  FROM f
