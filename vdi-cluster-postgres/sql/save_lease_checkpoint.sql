-- $1 name, $2 holder, $3 token, $4 checkpoint. Writes only while the lease
-- is held, unexpired on the database's clock, by $2 under $3: the row lock
-- of this UPDATE serialises it with a takeover (acquire_lease.sql updates
-- the same row), and a takeover committed first makes the WHERE clause
-- fail on the row's new version. No row updated: fenced off.
UPDATE vdi.leases l
   SET checkpoint = $4
 WHERE l.name = $1
   AND l.holder = $2
   AND l.token = $3
   AND l.expires_at > now()
