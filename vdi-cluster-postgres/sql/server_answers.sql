-- Whether the server answers at all (connect), before any schema exists.
SELECT 1
