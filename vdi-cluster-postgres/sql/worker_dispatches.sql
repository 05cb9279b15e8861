-- $1 worker id, $2 limit. Served by dispatches_worker_idx, in scan order.
SELECT d.record
  FROM vdi.dispatches d
 WHERE d.worker_id = $1
 ORDER BY d.exam_id, d.user_id
 LIMIT $2
