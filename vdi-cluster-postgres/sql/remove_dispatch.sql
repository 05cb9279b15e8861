-- $1 exam, $2 user, $3 dispatch id (NULL: any), $4 only if still reserved
SELECT vdi.remove_dispatch($1, $2, $3, $4) AS record
