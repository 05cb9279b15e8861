DELETE FROM vdi.operator_sessions
