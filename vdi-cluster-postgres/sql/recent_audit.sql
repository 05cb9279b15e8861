-- $1 limit. Newest first, by insertion order.
SELECT a.at, a.actor, a.action, a.target, a.detail
  FROM vdi.audit a
 ORDER BY a.seq DESC
 LIMIT $1
