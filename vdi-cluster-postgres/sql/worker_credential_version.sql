SELECT version FROM vdi.worker_credentials WHERE worker_id = $1
