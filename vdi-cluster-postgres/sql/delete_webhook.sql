-- $1 id: the endpoint and its failure count.
WITH failures AS (
    DELETE FROM vdi.webhook_failures WHERE endpoint_id = $1
)
DELETE FROM vdi.webhooks
 WHERE id = $1
RETURNING 1
