-- $1 exam, $2 student, $3 kind: the session's open interruption of a kind.
SELECT entry FROM vdi.open_interruptions
 WHERE exam_id = $1 AND user_id = $2 AND kind = $3
