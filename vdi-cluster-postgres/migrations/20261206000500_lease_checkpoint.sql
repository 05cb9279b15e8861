-- The checkpoint a lease's holders keep for whoever holds it next (the
-- leader's reconcile pass: its cursor and progress, JSON written by core).
-- It lives in the lease's row, which is never deleted (a released lease is
-- expired at -infinity), so it outlives the lease. acquire_lease.sql
-- leaves it alone; only save_lease_checkpoint.sql writes it, fenced by the
-- lease in the same statement.
ALTER TABLE vdi.leases ADD COLUMN IF NOT EXISTS checkpoint text;
