-- The operators' page sessions, by the SHA-256 (hex) of the opaque id the
-- page's cookie holds (the id itself is never stored). A sign-out deletes
-- the row, so every replica honours it; expired rows are answered by no
-- read and deleted at the next sign-in.
CREATE TABLE IF NOT EXISTS vdi.operator_sessions (
    id_hash    text PRIMARY KEY,
    session    jsonb NOT NULL,
    expires_at bigint NOT NULL
);
