-- $1 exam, $2 user, $3 now (ms)
SELECT joined, pos, enqueued_at, last_seen, placed, abandoned, first_placed, last_placed
  FROM vdi.queue_enqueue($1, $2, $3)
