-- $1 offset, $2 limit (NULL: to the end). One page of the trail, newest
-- first by insertion order, and the count of every entry, in one
-- snapshot: a page past the end is one row whose entry columns are NULL.
WITH page AS (
    SELECT a.seq, a.at, a.actor, a.action, a.target, a.detail
      FROM vdi.audit a
     ORDER BY a.seq DESC
    OFFSET $1
     LIMIT $2
)
SELECT (SELECT count(*) FROM vdi.audit) AS total,
       p.at, p.actor, p.action, p.target, p.detail
  FROM (SELECT 1) one
  LEFT JOIN page p ON true
 ORDER BY p.seq DESC
