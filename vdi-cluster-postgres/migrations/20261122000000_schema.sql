-- vdi-cluster schema: every table lives in the `vdi` schema.
--
-- Written so that applying it again to a database that already has it is a
-- no-op (IF NOT EXISTS everywhere); the migrator also records it as applied.
--
-- Identifiers use the "C" collation: comparisons are byte-wise (fast, and the
-- same order as Rust's `String`), so the scan order of dispatches is the same
-- as the in-memory backend's.

CREATE SCHEMA IF NOT EXISTS vdi;

-- Worker nodes. `record` is the core `WorkerRecord` as JSON and the only
-- source the rows are read from; `max_sessions`, `reported_active` and
-- `accepting` are copied from it on every write so compare-and-reserve can
-- check them in SQL. `dispatched` is the control plane's own count of
-- dispatch rows on the worker: written only together with those rows, never
-- by a record write. The low fill factor leaves room on each page for the
-- counter's HOT updates.
CREATE TABLE IF NOT EXISTS vdi.workers (
    id              text COLLATE "C" PRIMARY KEY,
    record          jsonb   NOT NULL,
    version         bigint  NOT NULL CHECK (version >= 1),
    max_sessions    integer NOT NULL CHECK (max_sessions BETWEEN 0 AND 1000000),
    reported_active bigint  NOT NULL CHECK (reported_active >= 0),
    accepting       boolean NOT NULL,
    dispatched      integer NOT NULL DEFAULT 0 CHECK (dispatched >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

-- Live dispatches: at most one per (exam, user) session (invariant B is the
-- primary key). `record` is the core `Dispatch` as JSON; the other columns
-- are what statements filter, lock and index on. Times are the control
-- plane's `Timestamp`: milliseconds since the epoch.
--
-- `worker_id` deliberately has no foreign key: the check would take a KEY
-- SHARE lock on the worker row for every insert, turning the hottest row of
-- the schema into a multixact at exam start. The functions in the next
-- migration keep the reference instead: a dispatch row is only ever written
-- in the same transaction as its worker's counter, and `vdi.delete_worker`
-- refuses while rows remain. The same holds for `vdi.affinity`.
CREATE TABLE IF NOT EXISTS vdi.dispatches (
    exam_id      text COLLATE "C" NOT NULL,
    user_id      text COLLATE "C" NOT NULL,
    id           uuid    NOT NULL,
    worker_id    text COLLATE "C" NOT NULL,
    state        text    NOT NULL CHECK (state IN ('reserved', 'active', 'orphaned')),
    reserved_at  bigint  NOT NULL CHECK (reserved_at >= 0),
    activated_at bigint  CHECK (activated_at >= 0),
    record       jsonb   NOT NULL,
    PRIMARY KEY (exam_id, user_id)
);

-- A worker's dispatches, in scan order; also counts them for recount and
-- serves the foreign key check when a worker is deleted.
CREATE INDEX IF NOT EXISTS dispatches_worker_idx
    ON vdi.dispatches (worker_id, exam_id, user_id);

-- Reservations (or orphans) by age: what reconcile reclaims.
CREATE INDEX IF NOT EXISTS dispatches_state_reserved_at_idx
    ON vdi.dispatches (state, reserved_at);

-- The exam's sticky worker and when the hint expires (control plane clock,
-- milliseconds since the epoch).
CREATE TABLE IF NOT EXISTS vdi.sticky (
    exam_id    text COLLATE "C" PRIMARY KEY,
    worker_id  text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL
);

-- Sessions of an exam per worker. A row exists only while its count is
-- positive; it is changed in the same step as the dispatch rows it counts.
CREATE TABLE IF NOT EXISTS vdi.affinity (
    exam_id   text COLLATE "C" NOT NULL,
    worker_id text COLLATE "C" NOT NULL,
    sessions  integer NOT NULL CHECK (sessions > 0),
    PRIMARY KEY (exam_id, worker_id)
);

CREATE INDEX IF NOT EXISTS affinity_worker_idx ON vdi.affinity (worker_id);

-- Leader leases. Expiry is judged on the database's clock. A released lease
-- keeps its row (expired at -infinity), so every new acquisition goes through
-- the row lock and draws its fencing token after the previous holder's.
CREATE TABLE IF NOT EXISTS vdi.leases (
    name       text COLLATE "C" PRIMARY KEY,
    holder     text   NOT NULL,
    token      bigint NOT NULL CHECK (token > 0),
    expires_at timestamptz NOT NULL
);

-- Fencing tokens: strictly increasing across all leases.
CREATE SEQUENCE IF NOT EXISTS vdi.lease_tokens AS bigint MINVALUE 1 NO CYCLE;

-- The audit trail of admin actions; `seq` orders it.
CREATE TABLE IF NOT EXISTS vdi.audit (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          bigint NOT NULL CHECK (at >= 0),
    actor       text   NOT NULL,
    action      text   NOT NULL,
    target      text   NOT NULL,
    detail      jsonb  NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Worker join tokens, stored only as hashes of their secrets.
CREATE TABLE IF NOT EXISTS vdi.join_tokens (
    id         text   COLLATE "C" PRIMARY KEY CHECK (id <> ''),
    token_hash text   COLLATE "C" NOT NULL UNIQUE CHECK (token_hash <> ''),
    created_by text   NOT NULL,
    created_at bigint NOT NULL CHECK (created_at >= 0),
    expires_at bigint NOT NULL CHECK (expires_at >= 0),
    max_uses   integer NOT NULL CHECK (max_uses >= 1),
    uses       integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses)
);

-- Each worker's own credential, as the hash of its secret.
CREATE TABLE IF NOT EXISTS vdi.worker_credentials (
    worker_id  text COLLATE "C" PRIMARY KEY,
    token_hash text COLLATE "C" NOT NULL CHECK (token_hash <> '')
);
