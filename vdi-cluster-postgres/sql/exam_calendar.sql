-- Every exam and the calendar's version, in one statement (one snapshot).
SELECT c.version,
       COALESCE((SELECT jsonb_agg(e.exam) FROM vdi.exams e), '[]'::jsonb) AS exams
  FROM vdi.exam_calendar c
