-- $1 exam, $2 user
SELECT d.record
  FROM vdi.dispatches d
 WHERE d.exam_id = $1
   AND d.user_id = $2
