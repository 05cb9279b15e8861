-- exam_delete.lua: remove one exam and its at-risk flag if the calendar's
-- version is the one the caller read (ExamStore::delete_exam_if_version).
--
-- KEYS[1]  the calendar's version (string counter)  {p}:exams:version
-- KEYS[2]  the exams (hash: exam id -> JSON)        {p}:exams
-- KEYS[3]  at-risk flags (hash: exam id -> missing) {p}:exams:risk
-- ARGV[1]  expected version
-- ARGV[2]  exam id
--
-- Returns {1, new version} when applied, {0, current version} otherwise.

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return { 0, current }
end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return { 1, redis.call('INCR', KEYS[1]) }
