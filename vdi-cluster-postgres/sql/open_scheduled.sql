-- The open scheduled actions due by $1 (ms; NULL: all), by due time then
-- id, at most $2.
SELECT s.action, s.version
  FROM vdi.scheduled_actions s
 WHERE s.open
   AND ($1::bigint IS NULL OR s.at_ms <= $1::bigint)
 ORDER BY s.at_ms, s.id
 LIMIT $2
