-- See vdi.outbox_finish.
SELECT vdi.outbox_finish($1, $2, $3, $4, $5, $6, $7, $8, $9) AS failures
