-- $1 worker id
SELECT w.version FROM vdi.workers w WHERE w.id = $1
