-- Every rehearsal record with its version, by exam id.
SELECT rehearsal, version FROM vdi.rehearsals ORDER BY exam_id
