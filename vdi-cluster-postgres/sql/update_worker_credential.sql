UPDATE vdi.worker_credentials
   SET version = version + 1, credential = $2
 WHERE worker_id = $1 AND version = $3
RETURNING version
