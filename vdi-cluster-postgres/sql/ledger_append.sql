-- $1 entries (see vdi.ledger_append).
SELECT vdi.ledger_append($1)
