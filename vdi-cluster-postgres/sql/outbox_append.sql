-- $1 entries (see vdi.outbox_append).
SELECT vdi.outbox_append($1)
