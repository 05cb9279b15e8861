-- exam_calendar.lua: every booked exam and the calendar's version, as one
-- view (ExamStore::exam_calendar).
--
-- KEYS[1]  the calendar's version (string counter) {p}:exams:version
-- KEYS[2]  the exams (hash: exam id -> JSON)       {p}:exams
--
-- Returns {version, json, json, ...}; version '0' when never written.

local reply = { redis.call('GET', KEYS[1]) or '0' }
for _, json in ipairs(redis.call('HVALS', KEYS[2])) do
  reply[#reply + 1] = json
end
return reply
