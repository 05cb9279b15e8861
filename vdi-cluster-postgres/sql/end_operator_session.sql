DELETE FROM vdi.operator_sessions WHERE id_hash = $1
