-- Fenced writes (reconcile's writes under the background lease): a write
-- carrying a lease is applied only while that lease is held.
--
-- Whether lease p_name is held, unexpired on the database's clock, by
-- p_holder under p_token. The lease row is locked FOR SHARE until the end
-- of the calling statement's transaction, in the same statement as the
-- write it guards: a takeover (acquire_lease's UPDATE of the row) waits for
-- the fenced write to commit, and a fenced write waiting on a takeover sees
-- the new holder and is refused. p_name NULL: an unfenced write.
CREATE OR REPLACE FUNCTION vdi.fence_holds(
    p_name text,
    p_holder text,
    p_token bigint
) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
    IF p_name IS NULL THEN
        RETURN true;
    END IF;
    PERFORM 1
       FROM vdi.leases l
      WHERE l.name = p_name
        AND l.holder = p_holder
        AND l.token = p_token
        AND l.expires_at > now()
        FOR SHARE;
    RETURN FOUND;
END
$fn$;
