-- Rehearsals (Rehearsals): each exam's rehearsal record, core's JSON,
-- under a version that every write compares and bumps. Which workers fail,
-- and whether the exam goes, is decided in Rust; this table only stores
-- the record and refuses a write on a stale version.

CREATE TABLE IF NOT EXISTS vdi.rehearsals (
    exam_id   text COLLATE "C" PRIMARY KEY,
    rehearsal jsonb  NOT NULL,
    version   bigint NOT NULL CHECK (version >= 1)
);
