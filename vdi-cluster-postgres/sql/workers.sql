SELECT w.record, w.version, w.dispatched
  FROM vdi.workers w
 ORDER BY w.id
