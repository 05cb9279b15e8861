-- $1 exam id, $2 expected version (0: none stored), $3 record (jsonb).
--
-- With $2 = 0, stores the record at version 1 unless one exists; else
-- replaces it and bumps its version only if it is still $2 (a concurrent
-- writer holding the row makes this wait, then re-check and miss). A row
-- comes back only when it was written.
WITH inserted AS (
    INSERT INTO vdi.rehearsals (exam_id, rehearsal, version)
    SELECT $1::text, $3::jsonb, 1
     WHERE $2::bigint = 0
        ON CONFLICT (exam_id) DO NOTHING
    RETURNING version
), updated AS (
    UPDATE vdi.rehearsals
       SET rehearsal = $3, version = version + 1
     WHERE exam_id = $1 AND version = $2 AND $2 > 0
    RETURNING version
)
SELECT version FROM inserted
UNION ALL
SELECT version FROM updated
