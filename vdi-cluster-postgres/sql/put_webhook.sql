-- $1 id, $2 the endpoint, $3 created_at (ms). No row: the id is taken.
INSERT INTO vdi.webhooks (id, endpoint, created_at)
VALUES ($1, $2, $3)
ON CONFLICT (id) DO NOTHING
RETURNING 1
