-- One scheduled action and its version.
-- $1 id
SELECT s.action, s.version FROM vdi.scheduled_actions s WHERE s.id = $1
