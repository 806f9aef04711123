-- lib_combo.lua: combos, a sender's run of one streakable gift in one room,
-- kept with the room so that every process counts the same run and any
-- process can end it. Not a script of its own: the server puts it in front
-- of a script's text (server/store/scripts.py), after lib_numbers.lua and
-- lib_msgpack.lua.
--
-- The room's combos HASH {r:room}:combos has one field per open run,
-- "<sender> <gift>" (neither has a space), with the value
-- "<id> <count> <last ms> <stream id>" (the stream "" when none). A gift paid
-- within the window of the run's last gift continues it; later, the old run
-- ends (its combo_end event comes first) and a new one starts.
--
-- The gift's event arrives encoded by the server with `combo` nil as its
-- last entry; the script that numbers the event puts the run in its place,
-- so the count is the one Redis kept, whichever process sent the gift.

local COMBO_NIL_TAIL = "\165combo\192"  -- "combo": nil, the event's last entry

local function combo_field(sender, gift)
  return sender .. " " .. gift
end

local function combo_read(value)
  if not value then
    return nil
  end
  local id, count, last, stream = string.match(value, "^(%S+) (%d+) (%d+) ?(%S*)$")
  if not id then
    return nil  -- damaged: a new run starts over it
  end
  return {id = id, count = tonumber(count), last = tonumber(last), stream = stream}
end

local function combo_text(run)
  return run.id .. " " .. digits(run.count) .. " " .. digits(run.last) .. " " .. run.stream
end

-- The run after a gift of `count` at `now`, and the run it ended (or nil).
-- A new run's id is taken from `seed` (the gift's request key), so that two
-- runs never share one.
local function combo_hit(run, seed, count, now, window, stream)
  local ended = nil
  if run and now - run.last > window then
    ended, run = run, nil
  end
  if not run then
    run = {id = string.sub(redis.sha1hex(seed), 1, 12), count = 0, last = now, stream = stream}
  end
  run.count = run.count + count
  if now > run.last then
    run.last = now  -- a gift from a process whose clock is behind does not move it back
  end
  return run, ended
end

-- The gift's event with the run as its combo, if the event has a place for it.
local function combo_filled(payload, run)
  if string.sub(payload, -#COMBO_NIL_TAIL) ~= COMBO_NIL_TAIL then
    return payload
  end
  return string.sub(payload, 1, -2) .. mp_map(2) .. "\162id" .. mp_str(run.id)
    .. "\165count" .. mp_uint(run.count)
end

-- A combo_end event (as server/core/protocol.py's ComboEnd), encoded.
local function combo_end_event(room_id, field, run, ts)
  local sender, gift = string.match(field, "^(%S+) (%S+)$")
  local stream = run.stream ~= "" and mp_str(run.stream) or MP_NIL
  return mp_map(8) .. "\164room" .. mp_str(room_id) .. "\166sender" .. mp_str(sender)
    .. "\164gift" .. mp_str(gift) .. "\165combo" .. mp_str(run.id)
    .. "\165count" .. mp_uint(run.count) .. "\162ts" .. mp_uint(ts)
    .. "\169stream_id" .. stream .. "\164type" .. mp_str("combo_end")
end
