-- Open interruptions (DisruptionLedger::open_interruption): an
-- interruption a student is still in (a refusal, a restarted worker's
-- release of the session), one row per (exam, student, kind), the first
-- kept. The placement that ends it writes its ledger entry with its
-- confirmation, then deletes the row if it is still the same.

CREATE TABLE IF NOT EXISTS vdi.open_interruptions (
    exam_id text NOT NULL,
    user_id text NOT NULL,
    kind    text NOT NULL,
    entry   jsonb NOT NULL,
    PRIMARY KEY (exam_id, user_id, kind)
);
