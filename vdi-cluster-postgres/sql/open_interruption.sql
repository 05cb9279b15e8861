-- $1 exam, $2 student, $3 kind, $4 the interruption: stored unless the
-- session has one of its kind.
INSERT INTO vdi.open_interruptions (exam_id, user_id, kind, entry)
VALUES ($1, $2, $3, $4)
ON CONFLICT DO NOTHING
