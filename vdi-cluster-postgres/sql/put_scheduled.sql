-- Compare-and-set of one scheduled action on its version: $2 NULL inserts
-- version 1 only if there is no row; otherwise the row is updated only if
-- its version is $2 (re-checked under the row lock).
-- $1 id, $2 expected version, $3 action (jsonb), $4 open, $5 due (ms)
WITH inserted AS (
    INSERT INTO vdi.scheduled_actions (id, version, at_ms, open, action)
    SELECT $1, 1, $5, $4, $3
     WHERE $2::bigint IS NULL
    ON CONFLICT (id) DO NOTHING
    RETURNING version
), updated AS (
    UPDATE vdi.scheduled_actions s
       SET version = s.version + 1,
           at_ms = $5,
           open = $4,
           action = $3
     WHERE s.id = $1
       AND s.version = $2::bigint
    RETURNING s.version
)
SELECT COALESCE((SELECT version FROM inserted), (SELECT version FROM updated)) AS written,
       (SELECT s.version FROM vdi.scheduled_actions s WHERE s.id = $1) AS current
