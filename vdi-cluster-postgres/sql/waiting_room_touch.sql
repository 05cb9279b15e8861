-- $1 exam, $2 user, $3 now (ms)
SELECT queued, waiting, pos, enqueued_at, last_seen, placed, abandoned, first_placed, last_placed
  FROM vdi.queue_touch($1, $2, $3)
