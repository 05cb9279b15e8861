-- $1 exam, $2 user
SELECT vdi.queue_leave($1, $2) AS done
