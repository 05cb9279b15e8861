-- The exam calendar (ExamStore): booked exams under one version that every
-- write compares and bumps (invariant D is decided in Rust; these tables
-- only store what was decided and refuse a write on a stale version).
-- Applying it again is a no-op, like the schema.

-- One row: the calendar's version.
CREATE TABLE IF NOT EXISTS vdi.exam_calendar (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint  NOT NULL CHECK (version >= 0)
);
INSERT INTO vdi.exam_calendar (id, version) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;

-- Booked exams, as core's record (JSON).
CREATE TABLE IF NOT EXISTS vdi.exams (
    exam_id text COLLATE "C" PRIMARY KEY,
    exam    jsonb NOT NULL
);

-- At-risk flags: students missing at the exam's peak. Gone with the exam.
CREATE TABLE IF NOT EXISTS vdi.exam_risks (
    exam_id text COLLATE "C" PRIMARY KEY REFERENCES vdi.exams (exam_id) ON DELETE CASCADE,
    missing integer NOT NULL CHECK (missing >= 0)
);
