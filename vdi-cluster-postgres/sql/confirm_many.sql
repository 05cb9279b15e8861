-- Several confirmations in one statement, so one commit: arrays of equal
-- length, element i one confirmation ($1 exams, $2 users, $3 dispatch ids,
-- $4 sessions (NULL elements allowed), $5 now (ms), $6 sticky expiries
-- (ms)). Row n (1-based) answers element n.
SELECT b.n, vdi.confirm(b.exam, b.usr, b.id, b.session, b.now, b.sticky_until) AS record
  FROM unnest($1::text[], $2::text[], $3::uuid[], $4::jsonb[], $5::bigint[], $6::bigint[])
       WITH ORDINALITY AS b(exam, usr, id, session, now, sticky_until, n)
