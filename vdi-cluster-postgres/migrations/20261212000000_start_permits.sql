-- Start permits (StartPermits): per worker, the permits held for starts
-- in flight and the starts waiting for one, each with a lease, and the
-- worker's last starts. The limit is decided in Rust and passed in; these
-- functions only check and write. Every step of one worker locks that
-- worker's pacing row first, so its steps are serialised and arrival
-- numbers follow that order. Times are milliseconds on the control
-- plane's clock. Applying it again is a no-op, like the schema.

-- Arrival numbers in the start queues.
CREATE SEQUENCE IF NOT EXISTS vdi.start_seq;

-- One row per worker that ever started through a permit: the lock of its
-- steps and its last starts (parallel arrays, oldest first).
CREATE TABLE IF NOT EXISTS vdi.start_pacing (
    worker_id text COLLATE "C" PRIMARY KEY,
    millis    integer[] NOT NULL DEFAULT '{}',
    in_flight integer[] NOT NULL DEFAULT '{}'
);

-- Permits held (held) and places in the queue (not held).
CREATE TABLE IF NOT EXISTS vdi.start_permits (
    worker_id text COLLATE "C" NOT NULL REFERENCES vdi.start_pacing (worker_id),
    id        text COLLATE "C" NOT NULL,
    held      boolean NOT NULL,
    arrival   bigint  NOT NULL,
    since     bigint  NOT NULL,
    until     bigint  NOT NULL,
    PRIMARY KEY (worker_id, id)
);
CREATE INDEX IF NOT EXISTS start_permits_queue ON vdi.start_permits (worker_id, held, arrival);

-- Takes or renews p_id's permit on p_worker, or its place in the queue,
-- until p_until: granted only while the permits held plus the waiters
-- ahead are fewer than p_limit.
CREATE OR REPLACE FUNCTION vdi.start_permit_acquire(
    p_worker text, p_id text, p_limit integer, p_now bigint, p_until bigint)
RETURNS TABLE (granted boolean, pos bigint, in_flight bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    mine vdi.start_permits;
    n_held bigint;
    ahead bigint;
BEGIN
    INSERT INTO vdi.start_pacing (worker_id) VALUES (p_worker) ON CONFLICT (worker_id) DO NOTHING;
    PERFORM 1 FROM vdi.start_pacing WHERE worker_id = p_worker FOR UPDATE;
    DELETE FROM vdi.start_permits p WHERE p.worker_id = p_worker AND p.until <= p_now;
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

-- Gives back p_id's permit or place; with a sample (p_millis not NULL),
-- appends it to the worker's last starts, keeping the newest p_keep.
-- Whether p_id held a permit.
CREATE OR REPLACE FUNCTION vdi.start_permit_release(
    p_worker text, p_id text, p_millis integer, p_in_flight integer, p_keep integer)
RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    was_held boolean;
BEGIN
    INSERT INTO vdi.start_pacing (worker_id) VALUES (p_worker) ON CONFLICT (worker_id) DO NOTHING;
    PERFORM 1 FROM vdi.start_pacing WHERE worker_id = p_worker FOR UPDATE;
    DELETE FROM vdi.start_permits p WHERE p.worker_id = p_worker AND p.id = p_id
    RETURNING p.held INTO was_held;
    IF p_millis IS NOT NULL THEN
        UPDATE vdi.start_pacing s
           SET millis = (s.millis || p_millis)[greatest(1, cardinality(s.millis) + 2 - p_keep):],
               in_flight = (s.in_flight || p_in_flight)[greatest(1, cardinality(s.in_flight) + 2 - p_keep):]
         WHERE s.worker_id = p_worker;
    END IF;
    RETURN coalesce(was_held, false);
END
$fn$;
