SELECT id, token_hash, created_by, created_at, expires_at, max_uses, uses, worker_id
  FROM vdi.join_tokens
 ORDER BY created_at DESC, id
