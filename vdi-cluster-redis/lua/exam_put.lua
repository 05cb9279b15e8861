-- exam_put.lua: insert or replace one exam if the calendar's version is
-- the one the caller decided on (ExamStore::put_exam_if_version). The
-- admission decision was made in Rust; this only compares and writes.
--
-- KEYS[1]  the calendar's version (string counter) {p}:exams:version
-- KEYS[2]  the exams (hash: exam id -> JSON)       {p}:exams
-- ARGV[1]  expected version
-- ARGV[2]  exam id
-- ARGV[3]  exam JSON
--
-- Returns {1, new version} when written, {0, current version} otherwise.

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return { 0, current }
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return { 1, redis.call('INCR', KEYS[1]) }
