-- Compare-and-set when no record is expected: inserts version 1.
-- $1 id, $2 record, $3 max_sessions, $4 reported_active, $5 accepting
INSERT INTO vdi.workers (id, record, version, max_sessions, reported_active, accepting)
VALUES ($1, $2, 1, $3, $4, $5)
ON CONFLICT (id) DO NOTHING
RETURNING version
