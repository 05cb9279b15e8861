-- A session's ledger entries: $1 exam, $2 student.
SELECT entry FROM vdi.disruptions
 WHERE exam_id = $1 AND user_id = $2
 ORDER BY started_at, id
