-- Readiness: a real read of the two tables every allocation reads. When
-- they are locked this waits, and so fails by the statement timeout, as an
-- allocation would.
SELECT (SELECT count(*) FROM (SELECT 1 FROM vdi.workers LIMIT 1) AS w)
     + (SELECT count(*) FROM (SELECT 1 FROM vdi.dispatches LIMIT 1) AS d)
