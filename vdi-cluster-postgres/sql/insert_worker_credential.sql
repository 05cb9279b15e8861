INSERT INTO vdi.worker_credentials (worker_id, version, credential)
VALUES ($1, 1, $2)
ON CONFLICT (worker_id) DO NOTHING
RETURNING version
