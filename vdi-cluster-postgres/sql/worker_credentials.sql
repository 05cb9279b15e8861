-- Every worker's credential, for a store's export.
SELECT worker_id, credential, version FROM vdi.worker_credentials
