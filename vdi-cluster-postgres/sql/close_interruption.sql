-- $1 exam, $2 student, $3 kind, $4 the interruption: deleted only if it is
-- still the one stored.
DELETE FROM vdi.open_interruptions
 WHERE exam_id = $1 AND user_id = $2 AND kind = $3 AND entry = $4
