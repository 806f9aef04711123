-- combo_end.lua: end a room's combos whose window has passed: each is
-- removed and its combo_end event published in the same call, so a combo
-- ends once, whichever process (the one that counted its last gift, or any
-- other once that one is gone) asks first.
--
-- KEYS[1..3]  room_event.lua's: seq, history, combos
-- ARGV[1..6]  room_event.lua's: channel, history length, marker ttl,
--             PUBLISH or SPUBLISH, combo window (ms), room id
-- ARGV[7]     now, ms: a combo ends once quiet for longer than the window
-- ARGV[8..]   the combos' fields ("<sender> <gift>"); none: every open combo
--
-- Returns, per field asked (or per open combo when none was named), the
-- field and 0 when it is not open now (ended by this call or before), else
-- when it may end: its last gift's time plus the window plus one.

local room = room_of(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  ARGV[6])
local now = tonumber(ARGV[7])
if not (room.window and now) then
  return redis.error_reply("combo_end.lua: the window and now must be numbers")
end

local fields, values = {}, {}
if #ARGV > 7 then
  for i = 8, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  values = redis.call("HMGET", room.combos, unpack(fields))
else
  local flat = redis.call("HGETALL", room.combos)
  for i = 1, #flat, 2 do
    fields[#fields + 1], values[#values + 1] = flat[i], flat[i + 1]
  end
end

local out = {}
for i, field in ipairs(fields) do
  local run = combo_read(values[i] or nil)
  local due = 0
  if run and now - run.last > room.window then
    publish_event(room, combo_end_event(room.id, field, run, now))
    redis.call("HDEL", room.combos, field)
  elseif run then
    due = run.last + room.window + 1
  elseif values[i] then
    redis.call("HDEL", room.combos, field)  -- damaged: nothing to announce
  end
  out[#out + 1] = field
  out[#out + 1] = due
end
return out
