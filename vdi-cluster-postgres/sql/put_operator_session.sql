WITH expired AS (
    DELETE FROM vdi.operator_sessions WHERE expires_at <= $4 AND id_hash <> $1
)
INSERT INTO vdi.operator_sessions (id_hash, session, expires_at)
VALUES ($1, $2, $3)
ON CONFLICT (id_hash) DO UPDATE SET session = EXCLUDED.session, expires_at = EXCLUDED.expires_at
