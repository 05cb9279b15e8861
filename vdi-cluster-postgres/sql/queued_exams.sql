-- Exams with at least one waiting student.
SELECT DISTINCT exam_id FROM vdi.queue_entries
