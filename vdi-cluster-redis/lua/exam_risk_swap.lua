-- exam_risk_swap.lua: set (or clear) a booked exam's at-risk flag and
-- return the flag it replaced (ExamStore::swap_exam_risk); with outbox
-- entries, write them too if the flag changed.
--
-- KEYS[1]  the exams (hash: exam id -> JSON)        {p}:exams
-- KEYS[2]  at-risk flags (hash: exam id -> missing) {p}:exams:risk
-- ARGV[1]  exam id
-- ARGV[2]  students missing, or '' to clear
-- With the outbox's entries to write when the flag changes (exam.at_risk,
-- exam.fits_again), also:
-- KEYS[3…6] the outbox keys {entries, due, state, dedup} (outbox_enqueue.lua)
-- KEYS[7…]  entry i's endpoint list
-- ARGV[3…]  the entries, as outbox_append (prelude.lua) reads them
--
-- Returns the previous flag, or false when there was none or the exam is
-- not booked (then nothing changes).

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return false
end
local before = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
if ARGV[3] and (before or '') ~= ARGV[2] then
  outbox_append({entries = KEYS[3], due = KEYS[4], state = KEYS[5], dedup = KEYS[6]}, 7, 3)
end
return before
