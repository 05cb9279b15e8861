-- $1 exam id.
--
-- The exam's rehearsal record with its version, if any.
SELECT rehearsal, version FROM vdi.rehearsals WHERE exam_id = $1
