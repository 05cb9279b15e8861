-- $1 worker id
SELECT w.record, w.version, w.dispatched
  FROM vdi.workers w
 WHERE w.id = $1
