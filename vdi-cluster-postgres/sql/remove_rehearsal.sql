-- $1 exam id, $2 expected version.
--
-- Deletes the exam's rehearsal only if its version is still $2 (a writer
-- holding the row makes this wait, then re-check and miss). A row comes
-- back only when it was deleted.
DELETE FROM vdi.rehearsals
 WHERE exam_id = $1 AND version = $2
RETURNING 1
