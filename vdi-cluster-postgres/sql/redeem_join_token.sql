UPDATE vdi.join_tokens
   SET uses = uses + 1
 WHERE token_hash = $1
   AND expires_at > $2
   AND uses < max_uses
RETURNING id, token_hash, created_by, created_at, expires_at, max_uses, uses, worker_id
