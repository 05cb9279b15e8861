-- The page after session ($1 exam, $2 user). $3 page size. Keyset
-- pagination on the primary key: a row comparison the index can seek to.
SELECT d.record
  FROM vdi.dispatches d
 WHERE (d.exam_id, d.user_id) > ($1, $2)
 ORDER BY d.exam_id, d.user_id
 LIMIT $3
