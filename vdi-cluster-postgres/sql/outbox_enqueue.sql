-- $1 entries (see vdi.outbox_append), $2 fencing lease (NULL: unfenced),
-- $3 its holder, $4 its token. held = false: refused, nothing written.
WITH f AS MATERIALIZED (SELECT vdi.fence_holds($2, $3, $4) AS held)
SELECT f.held AS held,
       CASE WHEN f.held THEN vdi.outbox_append($1) ELSE 0 END AS written
  FROM f
