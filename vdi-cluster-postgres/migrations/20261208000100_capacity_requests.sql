-- Capacity requests (CapacityRequests): what the scale hook was asked for,
-- as core's record (JSON) under a version that every write compares and
-- bumps. Which request to store and which step to take is decided in
-- Rust; this table only stores it and refuses a write on a stale version.

CREATE TABLE IF NOT EXISTS vdi.capacity_requests (
    request_id text COLLATE "C" PRIMARY KEY,
    request    jsonb  NOT NULL,
    version    bigint NOT NULL CHECK (version >= 1)
);
