-- Every exam with a ledger entry.
SELECT DISTINCT exam_id FROM vdi.disruptions
