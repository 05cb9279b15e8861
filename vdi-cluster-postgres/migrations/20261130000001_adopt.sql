-- Adoption: record a session a worker reports running that has no
-- dispatch (DispatchStore::adopt), as one statement like the other atomic
-- steps, with the same lock order: the session's dispatch row (the INSERT
-- claims it), the worker row, its affinity row, then the exam's sticky row.
--
-- outcome: 'adopted' (dispatch = p_record), 'existing' (dispatch = the
-- session's record, left in place) or 'unknown_worker' (nothing written).
-- No capacity check: the session already runs on the worker. The worker is
-- named by the caller; nothing is chosen here.
CREATE OR REPLACE FUNCTION vdi.adopt(
    p_exam text,
    p_user text,
    p_id uuid,
    p_worker text,
    p_reserved_at bigint,
    p_activated_at bigint,
    p_record jsonb,
    p_sticky_until bigint,
    OUT outcome text,
    OUT dispatch jsonb
)
LANGUAGE plpgsql AS $fn$
BEGIN
    -- Each pass ends in RETURN unless the session's row was created and
    -- removed again by concurrent steps in between; then look again.
    FOR attempt IN 1..16 LOOP
        SELECT d.record INTO dispatch FROM vdi.dispatches d
         WHERE d.exam_id = p_exam AND d.user_id = p_user;
        IF FOUND THEN
            outcome := 'existing';
            RETURN;
        END IF;

        INSERT INTO vdi.dispatches
            (exam_id, user_id, id, worker_id, state, reserved_at, activated_at, record)
        VALUES
            (p_exam, p_user, p_id, p_worker, 'active', p_reserved_at, p_activated_at, p_record)
        ON CONFLICT (exam_id, user_id) DO NOTHING;

        IF FOUND THEN
            UPDATE vdi.workers w
               SET dispatched = w.dispatched + 1
             WHERE w.id = p_worker;
            IF NOT FOUND THEN
                DELETE FROM vdi.dispatches d
                 WHERE d.exam_id = p_exam AND d.user_id = p_user;
                outcome := 'unknown_worker';
                dispatch := NULL;
                RETURN;
            END IF;
            PERFORM vdi.affinity_add(p_exam, p_worker);
            INSERT INTO vdi.sticky AS s (exam_id, worker_id, expires_at)
            VALUES (p_exam, p_worker, p_sticky_until)
            ON CONFLICT (exam_id) DO UPDATE
               SET worker_id = EXCLUDED.worker_id, expires_at = EXCLUDED.expires_at;
            outcome := 'adopted';
            dispatch := p_record;
            RETURN;
        END IF;
        -- A concurrent step claimed the session first: look again.
    END LOOP;

    RAISE EXCEPTION 'the dispatch of (%, %) kept changing during adopt', p_exam, p_user
        USING ERRCODE = 'serialization_failure';
END
$fn$;
