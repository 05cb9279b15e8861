SELECT endpoint
  FROM vdi.webhooks
 ORDER BY created_at, id
