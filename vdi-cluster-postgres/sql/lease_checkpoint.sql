-- $1 name. The checkpoint saved beside the lease (NULL: none, or no row).
SELECT l.checkpoint
  FROM vdi.leases l
 WHERE l.name = $1
