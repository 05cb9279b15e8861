INSERT INTO vdi.join_tokens (id, token_hash, created_by, created_at, expires_at, max_uses, uses, worker_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING
