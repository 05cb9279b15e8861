-- $1 name, $2 holder, $3 ttl (ms). Expiry on the database clock.
--
-- Takes the lease when it is free, expired, or already ours (renewal keeps
-- the token; a new acquisition draws a new one). The token of an
-- acquisition is drawn under the row lock (the UPDATE branch), so it is
-- larger than every token drawn before it. Only the very first acquisition
-- of a name inserts; released leases keep their row for that reason.
INSERT INTO vdi.leases AS l (name, holder, token, expires_at)
VALUES ($1, $2, nextval('vdi.lease_tokens'), now() + $3::bigint * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE
   SET token = CASE
                   WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.token
                   ELSE nextval('vdi.lease_tokens')
               END,
       holder = excluded.holder,
       expires_at = excluded.expires_at
 WHERE l.holder = excluded.holder
    OR l.expires_at <= now()
RETURNING l.token
