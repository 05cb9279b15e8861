-- Used slots are `dispatched + unrecorded`: a removed dispatch frees its
-- slot at once, and a session a worker runs without a dispatch still
-- counts.
--
-- `unrecorded` is `WorkerRecord::unrecorded`: the sessions the worker runs
-- that no dispatch on it accounts for, written with every record write and
-- read back into the record (it is not inside the JSON). `reported_active`
-- stays a copy of the record's reported count, no longer checked. A removal that holds a slot (`vdi.remove_dispatch` with
-- p_hold) increments it and the record's version in the same transaction.
-- The capacity checks of `vdi.refusal` and `vdi.reserve` are redefined on
-- it; the rest of those functions is unchanged.

ALTER TABLE vdi.workers
    ADD COLUMN IF NOT EXISTS unrecorded bigint NOT NULL DEFAULT 0 CHECK (unrecorded >= 0);

-- Why the worker cannot take one more session, or NULL if it can (judged on
-- the newest committed row).
CREATE OR REPLACE FUNCTION vdi.refusal(p_worker text) RETURNS text
LANGUAGE sql STABLE AS $fn$
    SELECT CASE
        WHEN w.id IS NULL OR NOT w.accepting THEN 'not_accepting'
        WHEN w.dispatched + w.unrecorded >= w.max_sessions THEN 'full'
    END
    FROM (SELECT 1) AS one
    LEFT JOIN vdi.workers w ON w.id = p_worker
$fn$;

-- Compare-and-reserve; as in the first definition, with the capacity check
--   accepting AND dispatched + unrecorded < max_sessions.
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
               AND w.dispatched + w.unrecorded < w.max_sessions;
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
               AND w.dispatched + w.unrecorded < w.max_sessions;
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

-- One slot of p_worker stays in use after a removal: the worker may still
-- run the session. The version moves too, so a heartbeat computed before
-- the removal fails its compare-and-set instead of overwriting the count.
CREATE OR REPLACE FUNCTION vdi.hold_slot(p_worker text) RETURNS void
LANGUAGE sql AS $fn$
    UPDATE vdi.workers w
       SET unrecorded = w.unrecorded + 1,
           version = w.version + 1
     WHERE w.id = p_worker
$fn$;

-- vdi.remove_dispatch, then, if it removed a row and p_hold is not NULL,
-- vdi.hold_slot(p_hold), in the same transaction.
CREATE OR REPLACE FUNCTION vdi.remove_dispatch(
    p_exam text,
    p_user text,
    p_id uuid,
    p_only_reserved boolean,
    p_hold text
) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_record jsonb;
BEGIN
    v_record := vdi.remove_dispatch(p_exam, p_user, p_id, p_only_reserved);
    IF v_record IS NOT NULL AND p_hold IS NOT NULL THEN
        PERFORM vdi.hold_slot(p_hold);
    END IF;
    RETURN v_record;
END
$fn$;
