-- lib_announce.lua: numbering and publishing one room event, once per event
-- key, for the scripts that announce (room_event.lua, room_gifts.lua,
-- combo_end.lua). Not a script of its own: the server puts it in front of a
-- script's text (server/store/scripts.py), after lib_numbers.lua.
--
-- room_of(seq, history, combos, channel, history_length, marker_ttl, publish,
-- combo_window, room_id): the room's keys and settings, as room_event.lua's
-- KEYS[1..3] and ARGV[1..6].
--
-- announce(room, marker, payload) returns seq, published: the event's new
-- seq and 1, or, when the marker says the event key was seen before, its
-- first seq and 0 with nothing written.
--
-- publish_event(room, payload) numbers, keeps and publishes an event that
-- needs no marker (its script makes it once by other means) and returns
-- its seq.

local function room_of(seq, history, combos, channel, history_length, marker_ttl, publish,
                       combo_window, room_id)
  return {
    seq = seq, history = history, combos = combos, channel = channel, length = history_length,
    ttl = marker_ttl, publish = publish == "SPUBLISH" and "SPUBLISH" or "PUBLISH",
    window = tonumber(combo_window), id = room_id,
  }
end

local function publish_event(room, payload)
  local seq = redis.call("INCR", room.seq)
  redis.call("XADD", room.history, "MAXLEN", "~", room.length, "*", "s", seq, "d", payload)
  redis.call(room.publish, room.channel, digits(seq) .. ":" .. payload)
  return seq
end

-- The seq the event key was first published with, or nil.
local function announced_as(marker)
  local previous = redis.call("GET", marker)
  return previous and tonumber(previous) or nil
end

local function announce(room, marker, payload)
  local previous = announced_as(marker)
  if previous then
    return previous, 0
  end
  local seq = publish_event(room, payload)
  redis.call("SET", marker, seq, "EX", room.ttl)
  return seq, 1
end
