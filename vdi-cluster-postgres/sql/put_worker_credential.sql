INSERT INTO vdi.worker_credentials (worker_id, token_hash)
VALUES ($1, $2)
ON CONFLICT (worker_id) DO UPDATE SET token_hash = EXCLUDED.token_hash
