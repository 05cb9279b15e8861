-- $1 expected version, $2 exam id, $3 exam (jsonb).
--
-- One statement: bumps the version only if it is still $1 (a concurrent
-- writer holding the row makes this wait, then re-check and miss), and
-- writes the exam only if the bump happened. `written` is NULL on a
-- conflict.
WITH bumped AS (
    UPDATE vdi.exam_calendar
       SET version = version + 1
     WHERE version = $1
 RETURNING version
), stored AS (
    INSERT INTO vdi.exams (exam_id, exam)
    SELECT $2, $3 FROM bumped
        ON CONFLICT (exam_id) DO UPDATE SET exam = excluded.exam
    RETURNING 1
)
SELECT (SELECT version FROM bumped) AS written,
       (SELECT version FROM vdi.exam_calendar) AS current
