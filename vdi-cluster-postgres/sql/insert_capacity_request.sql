-- $1 request id, $2 request (jsonb).
--
-- Stores the request at version 1 unless one with its id exists; a row
-- comes back only when it was stored.
INSERT INTO vdi.capacity_requests (request_id, request, version)
VALUES ($1, $2, 1)
    ON CONFLICT (request_id) DO NOTHING
RETURNING version
