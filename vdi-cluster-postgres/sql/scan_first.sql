-- The first page of a scan. $1 page size. Served by the primary key.
SELECT d.record
  FROM vdi.dispatches d
 ORDER BY d.exam_id, d.user_id
 LIMIT $1
