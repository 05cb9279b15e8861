-- $1 exam. One statement, one snapshot: the claim, the totals and the
-- entries head first (NULL state columns for an exam that never queued).
SELECT s.claim_user, s.claim_token, s.claim_until,
       coalesce(s.placed, 0) AS placed, coalesce(s.abandoned, 0) AS abandoned,
       s.first_placed, s.last_placed,
       coalesce((SELECT array_agg(q.user_id ORDER BY q.arrival)
                   FROM vdi.queue_entries q WHERE q.exam_id = $1), '{}') AS users,
       coalesce((SELECT array_agg(q.enqueued_at ORDER BY q.arrival)
                   FROM vdi.queue_entries q WHERE q.exam_id = $1), '{}') AS enqueued,
       coalesce((SELECT array_agg(q.last_seen ORDER BY q.arrival)
                   FROM vdi.queue_entries q WHERE q.exam_id = $1), '{}') AS seen
  FROM (SELECT $1::text AS exam_id) x
  LEFT JOIN vdi.queue_state s ON s.exam_id = x.exam_id
