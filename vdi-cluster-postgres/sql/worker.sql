-- $1 worker id
SELECT w.record, w.version, w.dispatched, w.unrecorded
  FROM vdi.workers w
 WHERE w.id = $1
