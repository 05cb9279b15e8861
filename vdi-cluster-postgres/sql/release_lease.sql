-- $1 name, $2 holder, $3 token. Expires the lease instead of deleting it
-- (see acquire_lease.sql).
UPDATE vdi.leases l
   SET expires_at = '-infinity'
 WHERE l.name = $1
   AND l.holder = $2
   AND l.token = $3
   AND l.expires_at <> '-infinity'
