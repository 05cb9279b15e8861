-- $1 worker id, $2 expected version
SELECT outcome, remaining FROM vdi.delete_worker($1, $2)
