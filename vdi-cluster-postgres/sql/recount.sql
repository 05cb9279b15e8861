-- Every counter against a count of the dispatch rows, in ONE snapshot: each
-- step changes rows and counters in one transaction, so a snapshot never
-- shows drift that is not there. Counters with no rows and rows with no
-- counter are both included. One row: how many counters were checked, and
-- the ones that disagree (exam NULL: a worker's own count), workers' own
-- counts first.
WITH per_exam AS (
    SELECT d.exam_id, d.worker_id, count(*) AS n
      FROM vdi.dispatches d
     GROUP BY d.exam_id, d.worker_id
), per_worker AS (
    SELECT p.worker_id, sum(p.n)::bigint AS n
      FROM per_exam p
     GROUP BY p.worker_id
), counters AS (
    SELECT coalesce(w.id, p.worker_id) AS worker,
           NULL::text AS exam,
           coalesce(w.dispatched, 0)::bigint AS stored,
           coalesce(p.n, 0)::bigint AS actual
      FROM (SELECT wk.id, wk.dispatched FROM vdi.workers wk WHERE wk.dispatched <> 0) w
      FULL JOIN per_worker p ON p.worker_id = w.id
    UNION ALL
    SELECT coalesce(a.worker_id, e.worker_id),
           coalesce(a.exam_id, e.exam_id),
           coalesce(a.sessions, 0)::bigint,
           coalesce(e.n, 0)::bigint
      FROM vdi.affinity a
      FULL JOIN per_exam e ON e.exam_id = a.exam_id AND e.worker_id = a.worker_id
)
SELECT (SELECT count(*) FROM counters) AS checked,
       coalesce(
           (SELECT jsonb_agg(
                       jsonb_build_object('worker', c.worker, 'exam', c.exam,
                                          'stored', c.stored, 'actual', c.actual)
                       ORDER BY c.exam NULLS FIRST, c.worker)
              FROM counters c
             WHERE c.stored <> c.actual),
           '[]'::jsonb) AS drift
