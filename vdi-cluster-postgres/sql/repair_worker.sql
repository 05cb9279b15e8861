-- $1 worker id: recount and repair its counters under its row lock.
SELECT r_exam, r_stored, r_actual FROM vdi.repair_worker($1)
