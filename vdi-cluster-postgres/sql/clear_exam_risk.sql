-- $1 exam id.
DELETE FROM vdi.exam_risks WHERE exam_id = $1
