SELECT w.record, w.version, w.dispatched, w.unrecorded
  FROM vdi.workers w
 ORDER BY w.id
