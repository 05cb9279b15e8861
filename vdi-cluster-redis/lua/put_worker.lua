-- put_worker.lua: compare-and-set a worker record (Registry::put_worker).
-- Writes the record and the fields reserve.lua checks; never touches the
-- dispatched count.
--
-- KEYS[1]  the worker (hash)               {p}:worker:{code}
-- KEYS[2]  registered workers (set)        {p}:workers
-- ARGV[1]  worker code
-- ARGV[2]  expected version, or '' for "no record yet"
-- ARGV[3]  the record (JSON)
-- ARGV[4]  max sessions
-- ARGV[5]  reported active sessions
-- ARGV[6]  '1' if the worker accepts new sessions, else '0'
--
-- Returns {'written', new version} or {'conflict', stored version or ''}.

local worker, workers = KEYS[1], KEYS[2]

local current = redis.call('HGET', worker, 'version')
if (current or '') ~= ARGV[2] then
  return {'conflict', current or ''}
end

redis.call('HSET', worker, 'record', ARGV[3], 'max', ARGV[4], 'reported', ARGV[5], 'accepting', ARGV[6])
redis.call('HINCRBY', worker, 'version', 1)
redis.call('SADD', workers, ARGV[1])
return {'written', redis.call('HGET', worker, 'version')}
