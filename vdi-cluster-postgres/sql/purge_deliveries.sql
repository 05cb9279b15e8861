-- $1 before (ms), $2 at most this many: delivered and failed deliveries
-- whose last attempt started before $1, deleted (oldest first; rows
-- another transaction holds are skipped). Returns how many.
WITH gone AS (
    DELETE FROM vdi.outbox
     WHERE id IN (
        SELECT id
          FROM vdi.outbox
         WHERE state IN ('delivered', 'failed')
           AND (attempts -> -1 ->> 'at')::bigint < $1
         ORDER BY (attempts -> -1 ->> 'at')::bigint
         LIMIT $2
         FOR UPDATE SKIP LOCKED
     )
    RETURNING 1
)
SELECT count(*)::integer FROM gone
