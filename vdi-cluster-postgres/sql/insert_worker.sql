-- Compare-and-set when no record is expected: inserts version 1.
-- $1 id, $2 record, $3 max_sessions, $4 unrecorded, $5 accepting,
-- $6 reported_active
INSERT INTO vdi.workers (id, record, version, max_sessions, unrecorded, accepting, reported_active)
VALUES ($1, $2, 1, $3, $4, $5, $6)
ON CONFLICT (id) DO NOTHING
RETURNING version
