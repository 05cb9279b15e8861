-- $1 exam id. Locks the booked exam's row and reads its at-risk flag; no
-- row when the exam is not booked.
SELECT r.missing
  FROM vdi.exams e
  LEFT JOIN vdi.exam_risks r ON r.exam_id = e.exam_id
 WHERE e.exam_id = $1
   FOR UPDATE OF e
