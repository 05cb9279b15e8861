-- waiting_room_leave.lua: removes a student from an exam's waiting room; a
-- claim on them stays for its promoter (WaitingRoom::leave_queue).
--
-- KEYS[1]  the room's order (sorted set)
-- KEYS[2]  the room's entries (hash)
-- KEYS[3]  the room's state (hash)
-- KEYS[4]  the exams with someone waiting (set)
-- ARGV[1]  exam id
-- ARGV[2]  user id
--
-- Returns 1 if the student was queued, else 0.

if queue_remove(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2]) then
  return 1
end
return 0
