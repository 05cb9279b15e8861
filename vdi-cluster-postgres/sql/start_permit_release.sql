-- $1 worker, $2 id, $3 the sample's millis (NULL: none), $4 its in-flight
-- count, $5 samples kept.
SELECT vdi.start_permit_release($1, $2, $3, $4, $5) AS held
