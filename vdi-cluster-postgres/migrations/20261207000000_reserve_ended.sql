-- Compare-and-reserve never brings back a released session: a request
-- that names a dispatch to supersede (a re-dispatch away from a failed
-- worker, planned from a read of that dispatch) answers 'ended' and
-- writes nothing when the session has no dispatch any more. Before, a
-- release that landed between the mover's read and its reservation was
-- undone by a fresh reservation for a student who had already left.
--
-- Same signature as 20261204000000_reserve_slots_left.sql; only the
-- not-found branch changes.

CREATE OR REPLACE FUNCTION vdi.compare_and_reserve(
    p_exam text,
    p_user text,
    p_id uuid,
    p_worker text,
    p_reserved_at bigint,
    p_record jsonb,
    p_supersede uuid,
    OUT outcome text,
    OUT dispatch jsonb,
    OUT superseded jsonb,
    OUT slots_left bigint
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
               AND w.dispatched + w.unrecorded < w.max_sessions
            RETURNING w.max_sessions - w.dispatched - w.unrecorded INTO slots_left;
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

        -- A move of a dispatch that is gone: the session was released
        -- since the mover read it, and must not come back.
        IF p_supersede IS NOT NULL THEN
            outcome := 'ended';
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
               AND w.dispatched + w.unrecorded < w.max_sessions
            RETURNING w.max_sessions - w.dispatched - w.unrecorded INTO slots_left;
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

    RAISE EXCEPTION 'the dispatch of (%, %) kept changing during compare_and_reserve', p_exam, p_user
        USING ERRCODE = 'serialization_failure';
END
$fn$;
