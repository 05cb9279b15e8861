-- $1 expected version, $2 exam id.
--
-- As put_exam.sql, removing the exam (its at-risk flag cascades).
WITH bumped AS (
    UPDATE vdi.exam_calendar
       SET version = version + 1
     WHERE version = $1
 RETURNING version
), removed AS (
    DELETE FROM vdi.exams
     WHERE exam_id = $2
       AND EXISTS (SELECT 1 FROM bumped)
    RETURNING 1
)
SELECT (SELECT version FROM bumped) AS written,
       (SELECT version FROM vdi.exam_calendar) AS current
