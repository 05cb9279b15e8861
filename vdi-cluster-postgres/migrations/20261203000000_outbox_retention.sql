-- Retention of the outbox: delivered and failed deliveries are deleted
-- once their last attempt is older than the retention (Outbox::
-- purge_deliveries, run by the leader). The time of the last attempt is
-- read from the attempts themselves; this index finds the oldest.

CREATE INDEX IF NOT EXISTS outbox_finished
    ON vdi.outbox (((attempts -> -1 ->> 'at')::bigint))
    WHERE state IN ('delivered', 'failed');
