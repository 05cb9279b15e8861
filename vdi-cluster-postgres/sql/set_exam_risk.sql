-- $1 exam id, $2 students missing.
INSERT INTO vdi.exam_risks (exam_id, missing) VALUES ($1, $2)
    ON CONFLICT (exam_id) DO UPDATE SET missing = excluded.missing
