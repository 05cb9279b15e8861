-- $1 exam, $2 student: the session's open interruptions.
SELECT entry FROM vdi.open_interruptions
 WHERE exam_id = $1 AND user_id = $2
