-- The waiting room (WaitingRoom): per exam, the students waiting in
-- arrival order, the claim on the head and the totals. Which student to
-- promote or abandon is decided in Rust; these functions only check and
-- write. Every step of one exam locks that exam's state row first, so the
-- steps of one exam are serialised and arrival numbers follow that order.
-- Times are milliseconds on the control plane's clock. Applying it again
-- is a no-op, like the schema.

-- Arrival numbers and claim tokens.
CREATE SEQUENCE IF NOT EXISTS vdi.queue_seq;

-- One row per exam that ever queued: the claim and the totals.
CREATE TABLE IF NOT EXISTS vdi.queue_state (
    exam_id      text COLLATE "C" PRIMARY KEY,
    claim_user   text COLLATE "C",
    claim_token  bigint,
    claim_until  bigint,
    placed       bigint NOT NULL DEFAULT 0 CHECK (placed >= 0),
    abandoned    bigint NOT NULL DEFAULT 0 CHECK (abandoned >= 0),
    first_placed bigint,
    last_placed  bigint
);

-- The waiting students.
CREATE TABLE IF NOT EXISTS vdi.queue_entries (
    exam_id     text COLLATE "C" NOT NULL REFERENCES vdi.queue_state (exam_id),
    user_id     text COLLATE "C" NOT NULL,
    arrival     bigint NOT NULL,
    enqueued_at bigint NOT NULL,
    last_seen   bigint NOT NULL,
    PRIMARY KEY (exam_id, user_id)
);
CREATE INDEX IF NOT EXISTS queue_entries_arrival ON vdi.queue_entries (exam_id, arrival);

-- Locks exam p_exam's state row, creating it if needed.
CREATE OR REPLACE FUNCTION vdi.queue_lock(p_exam text) RETURNS vdi.queue_state
LANGUAGE plpgsql AS $fn$
DECLARE
    s vdi.queue_state;
BEGIN
    INSERT INTO vdi.queue_state (exam_id) VALUES (p_exam) ON CONFLICT (exam_id) DO NOTHING;
    SELECT * INTO s FROM vdi.queue_state WHERE exam_id = p_exam FOR UPDATE;
    RETURN s;
END
$fn$;

-- A queued student's place, recording p_now as last seen (the state row is
-- locked by the caller). No row when not queued.
CREATE OR REPLACE FUNCTION vdi.queue_place(p_exam text, p_user text, p_now bigint)
RETURNS TABLE (pos bigint, enqueued_at bigint, last_seen bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    e vdi.queue_entries;
BEGIN
    UPDATE vdi.queue_entries q
       SET last_seen = greatest(q.last_seen, p_now)
     WHERE q.exam_id = p_exam AND q.user_id = p_user
    RETURNING * INTO e;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT count(*), e.enqueued_at, e.last_seen
          FROM vdi.queue_entries q
         WHERE q.exam_id = p_exam AND q.arrival <= e.arrival;
END
$fn$;

-- Appends p_user unless queued (then only last seen moves); the place and
-- the totals.
CREATE OR REPLACE FUNCTION vdi.queue_enqueue(p_exam text, p_user text, p_now bigint)
RETURNS TABLE (joined boolean, pos bigint, enqueued_at bigint, last_seen bigint,
               placed bigint, abandoned bigint, first_placed bigint, last_placed bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    s vdi.queue_state;
    was_new boolean := false;
BEGIN
    s := vdi.queue_lock(p_exam);
    IF NOT EXISTS (SELECT 1 FROM vdi.queue_entries q
                    WHERE q.exam_id = p_exam AND q.user_id = p_user) THEN
        INSERT INTO vdi.queue_entries (exam_id, user_id, arrival, enqueued_at, last_seen)
        VALUES (p_exam, p_user, nextval('vdi.queue_seq'), p_now, p_now);
        was_new := true;
    END IF;
    RETURN QUERY
        SELECT was_new, p.pos, p.enqueued_at, p.last_seen,
               s.placed, s.abandoned, s.first_placed, s.last_placed
          FROM vdi.queue_place(p_exam, p_user, p_now) p;
END
$fn$;

-- A queued student's place and the totals, recording p_now as last seen;
-- when not queued, queued = false and waiting = how many are.
CREATE OR REPLACE FUNCTION vdi.queue_touch(p_exam text, p_user text, p_now bigint)
RETURNS TABLE (queued boolean, waiting bigint, pos bigint, enqueued_at bigint,
               last_seen bigint, placed bigint, abandoned bigint,
               first_placed bigint, last_placed bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    s vdi.queue_state;
BEGIN
    SELECT * INTO s FROM vdi.queue_state WHERE exam_id = p_exam FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, 0::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                            NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT true, NULL::bigint, p.pos, p.enqueued_at, p.last_seen,
               s.placed, s.abandoned, s.first_placed, s.last_placed
          FROM vdi.queue_place(p_exam, p_user, p_now) p;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, (SELECT count(*) FROM vdi.queue_entries q
                                     WHERE q.exam_id = p_exam),
                            NULL::bigint, NULL::bigint, NULL::bigint,
                            NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint;
    END IF;
END
$fn$;

-- Removes p_user's entry (state row locked by the caller); a claim on
-- them stays, for its promoter to learn that they left. Whether there was
-- an entry.
CREATE OR REPLACE FUNCTION vdi.queue_remove(p_exam text, p_user text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM vdi.queue_entries q WHERE q.exam_id = p_exam AND q.user_id = p_user;
    RETURN FOUND;
END
$fn$;

-- Leaves the queue at once.
CREATE OR REPLACE FUNCTION vdi.queue_leave(p_exam text, p_user text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM 1 FROM vdi.queue_state WHERE exam_id = p_exam FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    RETURN vdi.queue_remove(p_exam, p_user);
END
$fn$;

-- Claims the head with a fresh token until p_until, if the queue is not
-- empty and no claim expiring after p_now is held. No row otherwise.
CREATE OR REPLACE FUNCTION vdi.queue_claim(p_exam text, p_now bigint, p_until bigint)
RETURNS TABLE (user_id text, token bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    s vdi.queue_state;
    head text;
    t bigint;
BEGIN
    SELECT * INTO s FROM vdi.queue_state WHERE exam_id = p_exam FOR UPDATE;
    IF NOT FOUND OR coalesce(s.claim_until, 0) > p_now THEN
        RETURN;
    END IF;
    SELECT q.user_id INTO head FROM vdi.queue_entries q
     WHERE q.exam_id = p_exam ORDER BY q.arrival LIMIT 1;
    IF head IS NULL THEN
        RETURN;
    END IF;
    t := nextval('vdi.queue_seq');
    UPDATE vdi.queue_state
       SET claim_user = head, claim_token = t, claim_until = p_until
     WHERE exam_id = p_exam;
    RETURN QUERY SELECT head, t;
END
$fn$;

-- If the claim (p_user, p_token) is still the exam's claim, clears it and
-- removes the claimed student, counting them placed at p_now. 1 placed,
-- 2 the student had left (nothing counted), 0 the claim is not held.
CREATE OR REPLACE FUNCTION vdi.queue_complete(p_exam text, p_user text, p_token bigint,
                                              p_now bigint) RETURNS integer
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM 1 FROM vdi.queue_state
      WHERE exam_id = p_exam AND claim_user = p_user AND claim_token = p_token
        FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    UPDATE vdi.queue_state
       SET claim_user = NULL, claim_token = NULL, claim_until = NULL
     WHERE exam_id = p_exam;
    IF NOT vdi.queue_remove(p_exam, p_user) THEN
        RETURN 2;
    END IF;
    UPDATE vdi.queue_state
       SET placed = placed + 1,
           first_placed = coalesce(first_placed, p_now),
           last_placed = p_now
     WHERE exam_id = p_exam;
    RETURN 1;
END
$fn$;

-- Gives the claim (p_user, p_token) up if it is still the exam's claim.
CREATE OR REPLACE FUNCTION vdi.queue_release(p_exam text, p_user text, p_token bigint)
RETURNS boolean
LANGUAGE sql AS $fn$
    WITH released AS (
        UPDATE vdi.queue_state
           SET claim_user = NULL, claim_token = NULL, claim_until = NULL
         WHERE exam_id = p_exam AND claim_user = p_user AND claim_token = p_token
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM released)
$fn$;

-- Removes p_user and counts an abandon if they were last seen before
-- p_seen_before and hold no claim expiring after p_now.
CREATE OR REPLACE FUNCTION vdi.queue_abandon(p_exam text, p_user text, p_seen_before bigint,
                                             p_now bigint) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    s vdi.queue_state;
BEGIN
    SELECT * INTO s FROM vdi.queue_state WHERE exam_id = p_exam FOR UPDATE;
    IF NOT FOUND
       OR (s.claim_user = p_user AND s.claim_until > p_now)
       OR NOT EXISTS (SELECT 1 FROM vdi.queue_entries q
                       WHERE q.exam_id = p_exam AND q.user_id = p_user
                         AND q.last_seen < p_seen_before) THEN
        RETURN false;
    END IF;
    PERFORM vdi.queue_remove(p_exam, p_user);
    UPDATE vdi.queue_state SET abandoned = abandoned + 1 WHERE exam_id = p_exam;
    RETURN true;
END
$fn$;
