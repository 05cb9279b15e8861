-- $1 exam, $2 now (ms). The sticky worker (sessions NULL) if unexpired,
-- then one row per worker holding sessions of the exam.
SELECT s.worker_id, NULL::integer AS sessions
  FROM vdi.sticky s
 WHERE s.exam_id = $1
   AND s.expires_at > $2
UNION ALL
SELECT a.worker_id, a.sessions
  FROM vdi.affinity a
 WHERE a.exam_id = $1
