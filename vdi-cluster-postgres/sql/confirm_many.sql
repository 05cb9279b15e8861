-- Several confirmations in one statement, so one commit: arrays of equal
-- length, element i one confirmation ($1 exams, $2 users, $3 dispatch ids,
-- $4 sessions (NULL elements allowed), $5 now (ms), $6 sticky expiries
-- (ms)), and the start permit each gives back as confirm.sql does ($7
-- workers (NULL: none), $8 ids, $9 milliseconds, $10 starts in flight,
-- $11 samples kept). Row n (1-based) answers element n.
SELECT b.n, vdi.confirm(b.exam, b.usr, b.id, b.session, b.now, b.sticky_until) AS record,
       CASE WHEN b.permit_worker IS NOT NULL
            THEN vdi.start_permit_release(b.permit_worker, b.permit_id, b.millis, b.in_flight,
                                          b.keep) END AS permit_held
  FROM unnest($1::text[], $2::text[], $3::uuid[], $4::jsonb[], $5::bigint[], $6::bigint[],
              $7::text[], $8::text[], $9::integer[], $10::integer[], $11::integer[])
       WITH ORDINALITY AS b(exam, usr, id, session, now, sticky_until,
                            permit_worker, permit_id, millis, in_flight, keep, n)
