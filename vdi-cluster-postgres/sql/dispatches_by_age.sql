-- $1 state, $2 reserved before (ms), $3 limit. Oldest first; served by
-- dispatches_state_reserved_at_idx.
SELECT d.record
  FROM vdi.dispatches d
 WHERE d.state = $1
   AND d.reserved_at < $2
 ORDER BY d.reserved_at
 LIMIT $3
