-- $1 endpoint, $2 offset, $3 limit (NULL: to the end). One page of the
-- endpoint's deliveries, newest first, and how many it has, in one
-- snapshot: a page past the end is one row whose delivery columns are
-- NULL.
WITH page AS (
    SELECT o.seq, o.entry, o.state, o.due_at, o.attempts
      FROM vdi.outbox o
     WHERE o.endpoint_id = $1
     ORDER BY o.seq DESC
    OFFSET $2
     LIMIT $3
)
SELECT (SELECT count(*) FROM vdi.outbox WHERE endpoint_id = $1) AS total,
       p.entry, p.state, p.due_at, p.attempts
  FROM (SELECT 1) one
  LEFT JOIN page p ON true
 ORDER BY p.seq DESC
