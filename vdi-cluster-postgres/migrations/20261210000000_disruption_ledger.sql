-- The disruption ledger (DisruptionLedger): every interruption of a
-- student's session, one row per (exam, student, entry id). Entries are
-- written by vdi.ledger_append in the transaction of their cause (the
-- confirmation of a re-dispatch, Outbox::confirm_with_outbox); a second
-- entry with the same id is skipped. Rows outlive the session's dispatch.

CREATE TABLE IF NOT EXISTS vdi.disruptions (
    exam_id    text NOT NULL,
    user_id    text NOT NULL,
    id         text NOT NULL,
    started_at bigint NOT NULL,
    entry      jsonb NOT NULL,
    PRIMARY KEY (exam_id, user_id, id)
);

-- Appends entries given as a JSON array of
-- {examId, userId, id, startedAt, entry}; answers how many were new.
CREATE OR REPLACE FUNCTION vdi.ledger_append(p_entries jsonb) RETURNS integer
LANGUAGE sql AS $fn$
    WITH written AS (
        INSERT INTO vdi.disruptions (exam_id, user_id, id, started_at, entry)
        SELECT e->>'examId', e->>'userId', e->>'id', (e->>'startedAt')::bigint, e->'entry'
          FROM jsonb_array_elements(coalesce(p_entries, '[]'::jsonb)) AS t(e)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM written
$fn$;
