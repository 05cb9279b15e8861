-- $1 exam, $2 user, $3 dispatch id
UPDATE vdi.dispatches d
   SET state = 'orphaned',
       record = jsonb_set(d.record, '{state}', '"orphaned"')
 WHERE d.exam_id = $1
   AND d.user_id = $2
   AND d.id = $3
