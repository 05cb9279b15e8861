DELETE FROM vdi.join_tokens WHERE id = $1
