-- Every capacity request with its version, by id.
SELECT request, version FROM vdi.capacity_requests ORDER BY request_id
