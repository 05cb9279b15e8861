-- A restarted worker's heartbeat writes its record and releases the
-- dispatches its report proves lost, in one transaction
-- (Outbox::put_worker_releasing_lost). Core decides which dispatches are
-- lost; this function only checks and writes.
--
-- p_lost is a JSON array of {"exam", "user", "id", "entries"}: a dispatch
-- is removed only while it is still the session's row with that id on
-- p_worker, with the worker's count and the exam's affinity; its entries
-- (as vdi.outbox_append reads them) are written only if it is removed.
-- The record is written as update_worker.sql writes it, on version
-- p_version, with p_entries. A stale version writes and removes nothing,
-- so two replicas applying the same heartbeat free the slots once.
--
-- Locks in the order of 20261122000001_atomic_steps.sql: the lost
-- dispatch rows first (in key order), then the worker row, then its
-- affinity rows. A row released or moved meanwhile is skipped.
--
-- outcome: 'written' (version = the new version, released = the
-- [{"exam", "user"}] removed) or 'conflict' (version = the stored one,
-- NULL when there is no worker).

CREATE OR REPLACE FUNCTION vdi.put_worker_releasing_lost(
    p_worker text,
    p_record jsonb,
    p_max_sessions integer,
    p_unrecorded bigint,
    p_accepting boolean,
    p_reported_active bigint,
    p_version bigint,
    p_entries jsonb,
    p_lost jsonb,
    OUT outcome text,
    OUT version bigint,
    OUT released jsonb
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_version bigint;
BEGIN
    released := '[]'::jsonb;
    PERFORM 1
       FROM vdi.dispatches d
       JOIN jsonb_to_recordset(coalesce(p_lost, '[]'::jsonb)) AS l(exam text, "user" text, id uuid)
         ON d.exam_id = l.exam AND d.user_id = l."user"
      WHERE d.id = l.id AND d.worker_id = p_worker
      ORDER BY d.exam_id, d.user_id
        FOR UPDATE OF d;

    SELECT w.version INTO v_version
      FROM vdi.workers w
     WHERE w.id = p_worker
       FOR NO KEY UPDATE;
    IF NOT FOUND OR v_version <> p_version THEN
        outcome := 'conflict';
        version := v_version;
        RETURN;
    END IF;

    WITH gone AS (
        DELETE FROM vdi.dispatches d
         USING jsonb_to_recordset(coalesce(p_lost, '[]'::jsonb)) AS l(exam text, "user" text, id uuid)
         WHERE d.exam_id = l.exam AND d.user_id = l."user"
           AND d.id = l.id AND d.worker_id = p_worker
        RETURNING d.exam_id, d.user_id
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('exam', g.exam_id, 'user', g.user_id)), '[]'::jsonb)
      INTO released
      FROM gone g;

    UPDATE vdi.workers w
       SET record = p_record,
           version = w.version + 1,
           max_sessions = p_max_sessions,
           unrecorded = p_unrecorded,
           reported_active = p_reported_active,
           accepting = p_accepting,
           dispatched = GREATEST(w.dispatched - jsonb_array_length(released), 0),
           updated_at = now()
     WHERE w.id = p_worker
    RETURNING w.version INTO version;

    -- The exams' affinity on this worker: rows that reach zero go first,
    -- then the others count down (a row counted down first could look
    -- empty to the delete).
    DELETE FROM vdi.affinity a
     USING (SELECT r->>'exam' AS exam, count(*) AS n
              FROM jsonb_array_elements(released) r
             GROUP BY 1) g
     WHERE a.exam_id = g.exam AND a.worker_id = p_worker AND a.sessions <= g.n;
    UPDATE vdi.affinity a
       SET sessions = a.sessions - g.n
      FROM (SELECT r->>'exam' AS exam, count(*) AS n
              FROM jsonb_array_elements(released) r
             GROUP BY 1) g
     WHERE a.exam_id = g.exam AND a.worker_id = p_worker;

    PERFORM vdi.outbox_append(p_entries);
    PERFORM vdi.outbox_append(coalesce(jsonb_agg(e.entry ORDER BY l.n, e.n), '[]'::jsonb))
       FROM jsonb_array_elements(coalesce(p_lost, '[]'::jsonb)) WITH ORDINALITY AS l(item, n)
       JOIN jsonb_array_elements(released) r
         ON r->>'exam' = l.item->>'exam' AND r->>'user' = l.item->>'user'
      CROSS JOIN LATERAL jsonb_array_elements(coalesce(l.item->'entries', '[]'::jsonb))
            WITH ORDINALITY AS e(entry, n);
    outcome := 'written';
END
$fn$;
