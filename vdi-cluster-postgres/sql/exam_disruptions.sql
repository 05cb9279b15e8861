-- Every ledger entry of an exam's sessions: $1 exam.
SELECT entry FROM vdi.disruptions
 WHERE exam_id = $1
 ORDER BY user_id, started_at, id
