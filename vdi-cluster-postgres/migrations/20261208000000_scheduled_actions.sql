-- Scheduled actions (ScheduledActions): an operator's change of a worker
-- carried out by the leader at a set time. Each row is written by
-- compare-and-set on its version; whether an action may move is decided
-- in Rust. Applying it again is a no-op, like the schema.

CREATE TABLE IF NOT EXISTS vdi.scheduled_actions (
    id      text COLLATE "C" PRIMARY KEY,
    version bigint  NOT NULL CHECK (version > 0),
    -- Due time (ms, core's Timestamp), copied from the action.
    at_ms   bigint  NOT NULL,
    -- Pending or firing: listed, and claimed when due.
    open    boolean NOT NULL,
    -- The core ScheduledAction.
    action  jsonb   NOT NULL
);

-- The open actions by due time: the leader's due ones and the listing.
CREATE INDEX IF NOT EXISTS scheduled_actions_open_idx
    ON vdi.scheduled_actions (at_ms, id) WHERE open;
