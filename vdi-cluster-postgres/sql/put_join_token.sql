INSERT INTO vdi.join_tokens (id, token_hash, created_by, created_at, expires_at, max_uses, uses)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
