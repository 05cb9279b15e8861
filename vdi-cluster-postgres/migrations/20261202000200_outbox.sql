-- Alerts by webhook: the endpoints and the outbox of deliveries.
--
-- An entry is written in the same transaction as the change that caused
-- it (vdi.outbox_append, called by the statements that carry entries);
-- at most one per (endpoint, de-duplication key). A deliverer leases due
-- entries (state 'leased', due_at = the lease's end, a new lease_token),
-- and acknowledges under that token only.

CREATE TABLE vdi.webhooks (
    id         text PRIMARY KEY,
    endpoint   jsonb NOT NULL,
    created_at bigint NOT NULL
);

-- Consecutive failed attempts per endpoint (a success deletes the row).
CREATE TABLE vdi.webhook_failures (
    endpoint_id text PRIMARY KEY,
    failures    integer NOT NULL
);

CREATE TABLE vdi.outbox (
    id          text PRIMARY KEY,
    endpoint_id text NOT NULL,
    dedup       text NOT NULL,
    entry       jsonb NOT NULL,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'leased', 'delivered', 'failed')),
    -- Pending: when due (ms); leased: when the lease ends.
    due_at      bigint NOT NULL,
    lease_token bigint NOT NULL DEFAULT 0,
    attempts    jsonb NOT NULL DEFAULT '[]'::jsonb,
    seq         bigserial NOT NULL,
    UNIQUE (endpoint_id, dedup)
);

CREATE INDEX outbox_due ON vdi.outbox (due_at) WHERE state IN ('pending', 'leased');
CREATE INDEX outbox_by_endpoint ON vdi.outbox (endpoint_id, seq DESC);

CREATE SEQUENCE vdi.outbox_lease_tokens;

-- Appends entries: p_entries is a JSON array of
-- {"id", "endpoint", "dedup", "due" (ms), "entry"}; duplicates (same id,
-- or same endpoint and key) are skipped. Returns how many were written.
CREATE OR REPLACE FUNCTION vdi.outbox_append(p_entries jsonb) RETURNS integer
LANGUAGE sql AS $fn$
    WITH written AS (
        INSERT INTO vdi.outbox (id, endpoint_id, dedup, entry, due_at)
        SELECT e->>'id', e->>'endpoint', e->>'dedup', e->'entry', (e->>'due')::bigint
          FROM jsonb_array_elements(coalesce(p_entries, '[]'::jsonb)) WITH ORDINALITY AS t(e, n)
         ORDER BY n
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM written
$fn$;

-- Records an attempt on a leased delivery (Outbox::finish_delivery):
-- nothing and NULL unless p_id is leased under p_token; else the next
-- state, the endpoint's consecutive failures (returned), and p_entries
-- when those reach p_threshold.
CREATE OR REPLACE FUNCTION vdi.outbox_finish(
    p_id text,
    p_token bigint,
    p_attempt jsonb,
    p_state text,
    p_due bigint,
    p_endpoint text,
    p_ok boolean,
    p_threshold integer,
    p_entries jsonb
) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    v_failures integer := 0;
BEGIN
    UPDATE vdi.outbox
       SET state = p_state,
           due_at = CASE WHEN p_state = 'pending' THEN p_due ELSE due_at END,
           attempts = attempts || jsonb_build_array(p_attempt)
     WHERE id = p_id
       AND state = 'leased'
       AND lease_token = p_token;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF p_ok THEN
        DELETE FROM vdi.webhook_failures WHERE endpoint_id = p_endpoint;
    ELSE
        INSERT INTO vdi.webhook_failures AS w (endpoint_id, failures)
        VALUES (p_endpoint, 1)
        ON CONFLICT (endpoint_id) DO UPDATE SET failures = w.failures + 1
        RETURNING w.failures INTO v_failures;
    END IF;
    IF p_threshold IS NOT NULL AND v_failures = p_threshold THEN
        PERFORM vdi.outbox_append(p_entries);
    END IF;
    RETURN v_failures;
END
$fn$;
