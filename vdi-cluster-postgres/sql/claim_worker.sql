-- $1 token hash, $2 now, $3 worker id, $4 bound only, $5 expected version
-- (NULL: none), $6 credential
SELECT outcome, id, token_hash, created_by, created_at, expires_at, max_uses, uses,
       worker_id, version
  FROM vdi.claim_worker($1, $2, $3, $4, $5, $6)
