-- $1 exam, $2 user, $3 dispatch id,
-- $4 fencing lease (NULL: unfenced), $5 its holder, $6 its token.
-- held = false: the fence refused the write and nothing was marked.
WITH f AS MATERIALIZED (SELECT vdi.fence_holds($4, $5, $6) AS held),
marked AS (
    UPDATE vdi.dispatches d
       SET state = 'orphaned',
           record = jsonb_set(d.record, '{state}', '"orphaned"')
      FROM f
     WHERE f.held
       AND d.exam_id = $1
       AND d.user_id = $2
       AND d.id = $3
    RETURNING 1
)
SELECT f.held AS held, (SELECT count(*) FROM marked) AS marked
  FROM f
