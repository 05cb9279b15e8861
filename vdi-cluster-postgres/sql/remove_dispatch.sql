-- $1 exam, $2 user, $3 dispatch id (NULL: any), $4 only if still reserved,
-- $5 fencing lease (NULL: unfenced), $6 its holder, $7 its token,
-- $8 the worker whose slot a removal holds (NULL: none).
-- held = false: the fence refused the write and nothing was removed.
WITH f AS MATERIALIZED (SELECT vdi.fence_holds($5, $6, $7) AS held)
SELECT f.held AS held,
       CASE WHEN f.held THEN vdi.remove_dispatch($1, $2, $3, $4, $8) END AS record
  FROM f
