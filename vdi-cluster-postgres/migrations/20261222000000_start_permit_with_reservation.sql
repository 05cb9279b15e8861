-- Start permits taken with compare-and-reserve and given back with the
-- confirmation or the undo (StartPermits' contract): reserve.sql calls
-- vdi.start_permit_grant_if_free after the reservation in the same
-- statement, confirm.sql, confirm_many.sql and remove_dispatch.sql call
-- vdi.start_permit_release after their own write. Every step of one
-- worker's permits still locks its pacing row first (vdi.start_permits_lock);
-- a step that also writes a dispatch takes that row's locks before it, as
-- every such step does. Applying it again is a no-op, like the schema.

-- Locks p_worker's pacing row (creating it) and drops the permits and
-- places whose lease ended at p_now.
CREATE OR REPLACE FUNCTION vdi.start_permits_lock(p_worker text, p_now bigint)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO vdi.start_pacing (worker_id) VALUES (p_worker) ON CONFLICT (worker_id) DO NOTHING;
    PERFORM 1 FROM vdi.start_pacing WHERE worker_id = p_worker FOR UPDATE;
    DELETE FROM vdi.start_permits p WHERE p.worker_id = p_worker AND p.until <= p_now;
END
$fn$;

-- Grants p_id a permit on p_worker until p_until only when fewer than
-- p_limit are held and nobody waits in the queue: the permits held with
-- it, or NULL when none was granted.
CREATE OR REPLACE FUNCTION vdi.start_permit_grant_if_free(
    p_worker text, p_id text, p_limit integer, p_now bigint, p_until bigint)
RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    n_held bigint;
BEGIN
    PERFORM vdi.start_permits_lock(p_worker, p_now);
    IF EXISTS (SELECT 1 FROM vdi.start_permits p WHERE p.worker_id = p_worker AND NOT p.held) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO n_held FROM vdi.start_permits p WHERE p.worker_id = p_worker AND p.held;
    IF n_held >= p_limit THEN
        RETURN NULL;
    END IF;
    INSERT INTO vdi.start_permits (worker_id, id, held, arrival, since, until)
    VALUES (p_worker, p_id, true, nextval('vdi.start_seq'), p_now, p_until);
    RETURN n_held + 1;
END
$fn$;

-- vdi.start_permit_acquire as before, its first step now the shared lock.
CREATE OR REPLACE FUNCTION vdi.start_permit_acquire(
    p_worker text, p_id text, p_limit integer, p_now bigint, p_until bigint)
RETURNS TABLE (granted boolean, pos bigint, in_flight bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    mine vdi.start_permits;
    n_held bigint;
    ahead bigint;
BEGIN
    PERFORM vdi.start_permits_lock(p_worker, p_now);
    SELECT count(*) INTO n_held FROM vdi.start_permits p WHERE p.worker_id = p_worker AND p.held;
    SELECT * INTO mine FROM vdi.start_permits p WHERE p.worker_id = p_worker AND p.id = p_id;
    IF FOUND AND mine.held THEN
        UPDATE vdi.start_permits p SET until = p_until WHERE p.worker_id = p_worker AND p.id = p_id;
        RETURN QUERY SELECT true, 0::bigint, n_held;
        RETURN;
    END IF;
    IF NOT FOUND THEN
        INSERT INTO vdi.start_permits (worker_id, id, held, arrival, since, until)
        VALUES (p_worker, p_id, false, nextval('vdi.start_seq'), p_now, p_until)
        RETURNING * INTO mine;
    ELSE
        UPDATE vdi.start_permits p SET until = p_until WHERE p.worker_id = p_worker AND p.id = p_id;
    END IF;
    SELECT count(*) INTO ahead FROM vdi.start_permits p
     WHERE p.worker_id = p_worker AND NOT p.held AND p.arrival < mine.arrival;
    IF n_held + ahead < p_limit THEN
        UPDATE vdi.start_permits p SET held = true, since = p_now, until = p_until
         WHERE p.worker_id = p_worker AND p.id = p_id;
        RETURN QUERY SELECT true, 0::bigint, n_held + 1;
        RETURN;
    END IF;
    RETURN QUERY SELECT false, ahead, n_held;
END
$fn$;
