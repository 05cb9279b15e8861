-- The atomic steps of the dispatch store, as PL/pgSQL functions.
--
-- Each is called as ONE statement in its own (autocommit) transaction, so a
-- step is all-or-nothing and holds its row locks only until that statement
-- commits: one round trip, no lock held across the network. At READ
-- COMMITTED every statement inside a function reads a fresh snapshot, and
-- every decision that matters is taken by a conditional UPDATE, which
-- re-checks its condition on the newest row version under the row lock: no
-- lost updates.
--
-- Lock order, the same in every function, so that they cannot deadlock:
--
--   1. the session's dispatch row (its primary key, also when it does not
--      exist yet: the first INSERT claims it),
--   2. worker rows, in id order when there are two,
--   3. affinity rows of those workers.
--
-- Only counters are maintained here; scheduling decisions stay in Rust.
-- Functions are replaced as a whole (CREATE OR REPLACE), so applying this
-- file again is a no-op.

-- Why the worker cannot take one more session, or NULL if it can (judged on
-- the newest committed row).
CREATE OR REPLACE FUNCTION vdi.refusal(p_worker text) RETURNS text
LANGUAGE sql STABLE AS $fn$
    SELECT CASE
        WHEN w.id IS NULL OR NOT w.accepting THEN 'not_accepting'
        WHEN GREATEST(w.reported_active, w.dispatched) >= w.max_sessions THEN 'full'
    END
    FROM (SELECT 1) AS one
    LEFT JOIN vdi.workers w ON w.id = p_worker
$fn$;

-- One more session of p_exam on p_worker. Callers hold the worker row lock.
CREATE OR REPLACE FUNCTION vdi.affinity_add(p_exam text, p_worker text) RETURNS void
LANGUAGE sql AS $fn$
    INSERT INTO vdi.affinity AS a (exam_id, worker_id, sessions)
    VALUES (p_exam, p_worker, 1)
    ON CONFLICT (exam_id, worker_id) DO UPDATE SET sessions = a.sessions + 1
$fn$;

-- A dispatch row of p_exam on p_worker is gone: decrement the worker's
-- count (saturating, like the in-memory backend) and the affinity count,
-- deleting the affinity row when it reaches zero. Locks the worker row
-- first, then the affinity row.
CREATE OR REPLACE FUNCTION vdi.uncount(p_exam text, p_worker text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE vdi.workers w
       SET dispatched = GREATEST(w.dispatched - 1, 0)
     WHERE w.id = p_worker;
    UPDATE vdi.affinity a
       SET sessions = a.sessions - 1
     WHERE a.exam_id = p_exam AND a.worker_id = p_worker AND a.sessions > 1;
    IF NOT FOUND THEN
        DELETE FROM vdi.affinity a
         WHERE a.exam_id = p_exam AND a.worker_id = p_worker;
    END IF;
END
$fn$;

-- Compare-and-reserve.
--
-- outcome: 'reserved' (dispatch = p_record, superseded = the replaced
-- record or NULL), 'existing' (dispatch = the session's live record), 'full'
-- or 'not_accepting'.
--
-- A fresh reservation inserts the dispatch row first (ON CONFLICT DO
-- NOTHING: a concurrent reserve of the same session waits for this one and
-- then answers 'existing'), then increments the worker's count with
-- a conditional UPDATE that is the capacity check itself:
--   accepting AND GREATEST(reported_active, dispatched) < max_sessions.
-- If it matches no row the inserted row is deleted again and the worker is
-- full or not accepting. A cheap read before the insert answers most
-- refusals without writing anything.
--
-- A supersede (p_supersede is the live dispatch's id and it sits on another
-- worker) locks the live row, both workers in id order, then moves the row
-- and both sets of counters.
CREATE OR REPLACE FUNCTION vdi.reserve(
    p_exam text,
    p_user text,
    p_id uuid,
    p_worker text,
    p_reserved_at bigint,
    p_record jsonb,
    p_supersede uuid,
    OUT outcome text,
    OUT dispatch jsonb,
    OUT superseded jsonb
)
LANGUAGE plpgsql AS $fn$
DECLARE
    cur vdi.dispatches%ROWTYPE;
BEGIN
    -- Each pass ends in RETURN unless the session's row was created or
    -- removed by a concurrent step in between; then look again.
    FOR attempt IN 1..16 LOOP
        SELECT * INTO cur FROM vdi.dispatches d
         WHERE d.exam_id = p_exam AND d.user_id = p_user;

        IF FOUND THEN
            IF p_supersede IS DISTINCT FROM cur.id OR cur.worker_id = p_worker THEN
                outcome := 'existing';
                dispatch := cur.record;
                RETURN;
            END IF;

            SELECT * INTO cur FROM vdi.dispatches d
             WHERE d.exam_id = p_exam AND d.user_id = p_user
               FOR UPDATE;
            CONTINUE WHEN NOT FOUND;
            IF p_supersede IS DISTINCT FROM cur.id OR cur.worker_id = p_worker THEN
                outcome := 'existing';
                dispatch := cur.record;
                RETURN;
            END IF;

            PERFORM 1 FROM vdi.workers w
              WHERE w.id IN (cur.worker_id, p_worker)
              ORDER BY w.id
                FOR NO KEY UPDATE;
            UPDATE vdi.workers w
               SET dispatched = w.dispatched + 1
             WHERE w.id = p_worker
               AND w.accepting
               AND GREATEST(w.reported_active, w.dispatched) < w.max_sessions;
            IF NOT FOUND THEN
                outcome := coalesce(vdi.refusal(p_worker), 'full');
                RETURN;
            END IF;
            PERFORM vdi.uncount(p_exam, cur.worker_id);
            UPDATE vdi.dispatches d
               SET id = p_id,
                   worker_id = p_worker,
                   state = 'reserved',
                   reserved_at = p_reserved_at,
                   activated_at = NULL,
                   record = p_record
             WHERE d.exam_id = p_exam AND d.user_id = p_user;
            PERFORM vdi.affinity_add(p_exam, p_worker);
            outcome := 'reserved';
            dispatch := p_record;
            superseded := cur.record;
            RETURN;
        END IF;

        outcome := vdi.refusal(p_worker);
        IF outcome IS NOT NULL THEN
            RETURN;
        END IF;

        INSERT INTO vdi.dispatches
            (exam_id, user_id, id, worker_id, state, reserved_at, activated_at, record)
        VALUES
            (p_exam, p_user, p_id, p_worker, 'reserved', p_reserved_at, NULL, p_record)
        ON CONFLICT (exam_id, user_id) DO NOTHING;

        IF FOUND THEN
            UPDATE vdi.workers w
               SET dispatched = w.dispatched + 1
             WHERE w.id = p_worker
               AND w.accepting
               AND GREATEST(w.reported_active, w.dispatched) < w.max_sessions;
            IF NOT FOUND THEN
                DELETE FROM vdi.dispatches d
                 WHERE d.exam_id = p_exam AND d.user_id = p_user;
                outcome := coalesce(vdi.refusal(p_worker), 'full');
                RETURN;
            END IF;
            PERFORM vdi.affinity_add(p_exam, p_worker);
            outcome := 'reserved';
            dispatch := p_record;
            RETURN;
        END IF;
        -- A concurrent reserve of this session committed first.
    END LOOP;

    RAISE EXCEPTION 'the dispatch of (%, %) kept changing during reserve', p_exam, p_user
        USING ERRCODE = 'serialization_failure';
END
$fn$;

-- Removes the session's dispatch with its counters: release (p_id NULL:
-- whatever dispatch is there) or undo (p_only_reserved: only a dispatch that
-- is still reserved). Returns the removed record, or NULL.
CREATE OR REPLACE FUNCTION vdi.remove_dispatch(
    p_exam text,
    p_user text,
    p_id uuid,
    p_only_reserved boolean
) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_worker text;
    v_record jsonb;
BEGIN
    DELETE FROM vdi.dispatches d
     WHERE d.exam_id = p_exam
       AND d.user_id = p_user
       AND (p_id IS NULL OR d.id = p_id)
       AND (NOT p_only_reserved OR d.state = 'reserved')
    RETURNING d.worker_id, d.record INTO v_worker, v_record;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM vdi.uncount(p_exam, v_worker);
    RETURN v_record;
END
$fn$;

-- Marks the reservation p_id active with the worker's answer and points the
-- exam's sticky hint at its worker until p_sticky_until. Returns the updated
-- record, or NULL when the reservation is gone or is not p_id.
--
-- Every confirm of an exam writes the same sticky row. When another confirm
-- of the exam holds that row right now, this one leaves it to that one: the
-- two are concurrent, so either order is a correct outcome, and thousands
-- of students of one exam do not queue on one row lock.
CREATE OR REPLACE FUNCTION vdi.confirm(
    p_exam text,
    p_user text,
    p_id uuid,
    p_session jsonb,
    p_now bigint,
    p_sticky_until bigint
) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_worker text;
    v_record jsonb;
BEGIN
    UPDATE vdi.dispatches d
       SET state = 'active',
           activated_at = p_now,
           record = d.record || jsonb_build_object(
               'state', 'active',
               'activatedAt', p_now,
               'session', p_session)
     WHERE d.exam_id = p_exam
       AND d.user_id = p_user
       AND d.id = p_id
       AND d.state = 'reserved'
    RETURNING d.worker_id, d.record INTO v_worker, v_record;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    PERFORM 1 FROM vdi.sticky s WHERE s.exam_id = p_exam FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE vdi.sticky s
           SET worker_id = v_worker, expires_at = p_sticky_until
         WHERE s.exam_id = p_exam;
    ELSIF NOT EXISTS (SELECT 1 FROM vdi.sticky s WHERE s.exam_id = p_exam) THEN
        INSERT INTO vdi.sticky (exam_id, worker_id, expires_at)
        VALUES (p_exam, v_worker, p_sticky_until)
        ON CONFLICT (exam_id) DO NOTHING;
    END IF;
    RETURN v_record;
END
$fn$;

-- Deletes worker p_id if its version is p_version and no dispatch row
-- points at it. outcome: 'deleted', 'conflict' or 'has_dispatches'
-- (remaining = the worker's count, or the rows found when the count says 0).
CREATE OR REPLACE FUNCTION vdi.delete_worker(
    p_id text,
    p_version bigint,
    OUT outcome text,
    OUT remaining bigint
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_version bigint;
BEGIN
    SELECT w.version, w.dispatched INTO v_version, remaining
      FROM vdi.workers w
     WHERE w.id = p_id
       FOR UPDATE;
    IF NOT FOUND OR v_version <> p_version THEN
        outcome := 'conflict';
        remaining := 0;
        RETURN;
    END IF;
    IF remaining = 0 THEN
        -- Read after the lock: every step that adds a row for this worker
        -- has either committed it with its count or not yet counted it,
        -- and will find the worker gone.
        SELECT count(*) INTO remaining FROM vdi.dispatches d WHERE d.worker_id = p_id;
    END IF;
    IF remaining > 0 THEN
        outcome := 'has_dispatches';
        RETURN;
    END IF;
    DELETE FROM vdi.affinity a WHERE a.worker_id = p_id;
    DELETE FROM vdi.workers w WHERE w.id = p_id;
    outcome := 'deleted';
END
$fn$;

-- Recounts worker p_worker's counters under its row lock and writes the
-- true values. Returns one row per counter that was wrong (r_exam NULL: the
-- worker's own count). Statements after the lock read snapshots taken after
-- it: every step that changed this worker's rows has committed its counter
-- change with them, or has not made either visible yet. A worker row that
-- does not exist cannot be repaired; its rows are reported.
CREATE OR REPLACE FUNCTION vdi.repair_worker(p_worker text)
RETURNS TABLE (r_exam text, r_stored bigint, r_actual bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_stored bigint;
    v_actual bigint;
    c record;
BEGIN
    SELECT w.dispatched INTO v_stored
      FROM vdi.workers w
     WHERE w.id = p_worker
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        SELECT count(*) INTO v_actual FROM vdi.dispatches d WHERE d.worker_id = p_worker;
        IF v_actual > 0 THEN
            r_exam := NULL;
            r_stored := 0;
            r_actual := v_actual;
            RETURN NEXT;
        END IF;
        RETURN;
    END IF;

    SELECT count(*) INTO v_actual FROM vdi.dispatches d WHERE d.worker_id = p_worker;
    IF v_actual <> v_stored THEN
        UPDATE vdi.workers w SET dispatched = v_actual WHERE w.id = p_worker;
        r_exam := NULL;
        r_stored := v_stored;
        r_actual := v_actual;
        RETURN NEXT;
    END IF;

    FOR c IN
        SELECT coalesce(a.exam_id, n.exam_id) AS exam,
               coalesce(a.sessions, 0)::bigint AS stored,
               coalesce(n.sessions, 0)::bigint AS actual
          FROM (SELECT af.exam_id, af.sessions
                  FROM vdi.affinity af
                 WHERE af.worker_id = p_worker) a
          FULL JOIN (SELECT d.exam_id, count(*) AS sessions
                       FROM vdi.dispatches d
                      WHERE d.worker_id = p_worker
                      GROUP BY d.exam_id) n
            ON n.exam_id = a.exam_id
         WHERE coalesce(a.sessions, 0) <> coalesce(n.sessions, 0)
         ORDER BY 1
    LOOP
        IF c.actual = 0 THEN
            DELETE FROM vdi.affinity af
             WHERE af.exam_id = c.exam AND af.worker_id = p_worker;
        ELSE
            INSERT INTO vdi.affinity AS af (exam_id, worker_id, sessions)
            VALUES (c.exam, p_worker, c.actual)
            ON CONFLICT (exam_id, worker_id) DO UPDATE SET sessions = excluded.sessions;
        END IF;
        r_exam := c.exam;
        r_stored := c.stored;
        r_actual := c.actual;
        RETURN NEXT;
    END LOOP;
END
$fn$;
