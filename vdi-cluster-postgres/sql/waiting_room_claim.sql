-- $1 exam, $2 now (ms), $3 the claim's deadline (ms)
SELECT user_id, token FROM vdi.queue_claim($1, $2, $3)
