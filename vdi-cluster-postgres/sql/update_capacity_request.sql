-- $1 request id, $2 expected version, $3 request (jsonb).
--
-- Replaces the request and bumps its version only if it is still $2 (a
-- concurrent writer holding the row makes this wait, then re-check and
-- miss); a row comes back only when it was written.
UPDATE vdi.capacity_requests
   SET request = $3, version = version + 1
 WHERE request_id = $1 AND version = $2
RETURNING version
