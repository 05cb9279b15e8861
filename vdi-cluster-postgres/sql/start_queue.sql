-- $1 worker, $2 now (ms). One statement, so one snapshot: the unexpired
-- permits (oldest grant first), the unexpired queue in order, the samples.
SELECT array(SELECT p.id FROM vdi.start_permits p
              WHERE p.worker_id = $1 AND p.held AND p.until > $2
              ORDER BY p.since, p.id) AS held_ids,
       array(SELECT p.since FROM vdi.start_permits p
              WHERE p.worker_id = $1 AND p.held AND p.until > $2
              ORDER BY p.since, p.id) AS held_since,
       array(SELECT p.id FROM vdi.start_permits p
              WHERE p.worker_id = $1 AND NOT p.held AND p.until > $2
              ORDER BY p.arrival) AS waiting,
       coalesce((SELECT s.millis FROM vdi.start_pacing s WHERE s.worker_id = $1), '{}') AS millis,
       coalesce((SELECT s.in_flight FROM vdi.start_pacing s WHERE s.worker_id = $1), '{}') AS in_flight
