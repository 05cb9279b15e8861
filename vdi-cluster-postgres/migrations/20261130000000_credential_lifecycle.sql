-- Workers' credentials get a lifecycle (expiry, rotation, revocation,
-- reset) and join tokens may be bound to one worker code.
--
-- vdi.worker_credentials keeps each credential as JSON (core's
-- WorkerCredential: state, the current secret's hash and validity, the
-- secret a rotation kept) with a version, written only by compare-and-set.
-- A bare hash stored before this migration becomes an active credential of
-- version 0 that never expires, until it is rotated, revoked or reset.
-- Every statement can run again without error or change.

ALTER TABLE vdi.join_tokens
    ADD COLUMN IF NOT EXISTS worker_id text COLLATE "C" CHECK (worker_id <> '');

ALTER TABLE vdi.worker_credentials
    ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    ADD COLUMN IF NOT EXISTS credential jsonb;

DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_schema = 'vdi' AND table_name = 'worker_credentials'
                  AND column_name = 'token_hash') THEN
        UPDATE vdi.worker_credentials
           SET credential = jsonb_build_object(
                   'state', 'active',
                   'current', jsonb_build_object(
                       'hash', token_hash, 'issuedAt', 0,
                       'expiresAt', 18446744073709551615))
         WHERE credential IS NULL;
        ALTER TABLE vdi.worker_credentials DROP COLUMN token_hash;
    END IF;
END
$do$;

ALTER TABLE vdi.worker_credentials ALTER COLUMN credential SET NOT NULL;

-- A join in one step (Credentials::claim_worker): if the join token whose
-- hash is p_token_hash exists, has not expired at p_now, has uses left and
-- is bound to p_worker (or to none, unless p_bound_only), and the worker's
-- credential version is p_expected (NULL: no credential), count one use and
-- write p_credential with the next version. Otherwise change nothing.
--
-- Lock order: the join token row, then the credential row.
--
-- outcome: 'claimed' (the token after the use, the new version),
-- 'refused' (the token as stored, if any), 'conflict' (the stored version).
CREATE OR REPLACE FUNCTION vdi.claim_worker(
    p_token_hash text, p_now bigint, p_worker text, p_bound_only boolean,
    p_expected bigint, p_credential jsonb)
RETURNS TABLE (outcome text, id text, token_hash text, created_by text,
               created_at bigint, expires_at bigint, max_uses integer,
               uses integer, worker_id text, version bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    t vdi.join_tokens%ROWTYPE;
    v bigint;
BEGIN
    SELECT * INTO t FROM vdi.join_tokens j WHERE j.token_hash = p_token_hash FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'refused'::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::bigint, NULL::integer, NULL::integer, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF t.expires_at <= p_now OR t.uses >= t.max_uses
       OR (t.worker_id IS NULL AND p_bound_only)
       OR (t.worker_id IS NOT NULL AND t.worker_id <> p_worker) THEN
        RETURN QUERY SELECT 'refused'::text, t.id, t.token_hash, t.created_by, t.created_at,
                            t.expires_at, t.max_uses, t.uses, t.worker_id, NULL::bigint;
        RETURN;
    END IF;
    IF p_expected IS NULL THEN
        INSERT INTO vdi.worker_credentials AS c (worker_id, version, credential)
        VALUES (p_worker, 1, p_credential)
        ON CONFLICT ON CONSTRAINT worker_credentials_pkey DO NOTHING
        RETURNING c.version INTO v;
    ELSE
        UPDATE vdi.worker_credentials c
           SET version = c.version + 1, credential = p_credential
         WHERE c.worker_id = p_worker AND c.version = p_expected
        RETURNING c.version INTO v;
    END IF;
    IF v IS NULL THEN
        RETURN QUERY SELECT 'conflict'::text, NULL::text, NULL::text, NULL::text, NULL::bigint,
                            NULL::bigint, NULL::integer, NULL::integer, NULL::text,
                            (SELECT c.version FROM vdi.worker_credentials c
                              WHERE c.worker_id = p_worker);
        RETURN;
    END IF;
    UPDATE vdi.join_tokens j SET uses = j.uses + 1 WHERE j.id = t.id;
    RETURN QUERY SELECT 'claimed'::text, t.id, t.token_hash, t.created_by, t.created_at,
                        t.expires_at, t.max_uses, t.uses + 1, t.worker_id, v;
END
$fn$;
