-- lib_announce.lua: numbering and publishing one room event, once per event
-- key, for the scripts that announce (room_event.lua, room_gifts.lua). Not a
-- script of its own: the server puts it in front of a script's text
-- (server/store/scripts.py), after lib_numbers.lua.
--
-- room_of(seq, history, channel, history_length, marker_ttl, publish): the
-- room's keys and settings, as room_event.lua's KEYS[1..2] and ARGV[1..4].
--
-- announce(room, marker, payload) returns seq, published: the event's new
-- seq and 1, or, when the marker says the event key was seen before, its
-- first seq and 0 with nothing written.

local function room_of(seq, history, channel, history_length, marker_ttl, publish)
  return {
    seq = seq, history = history, channel = channel, length = history_length,
    ttl = marker_ttl, publish = publish == "SPUBLISH" and "SPUBLISH" or "PUBLISH",
  }
end

local function announce(room, marker, payload)
  local previous = redis.call("GET", marker)
  if previous then
    return tonumber(previous), 0
  end
  local seq = redis.call("INCR", room.seq)
  redis.call("XADD", room.history, "MAXLEN", "~", room.length, "*", "s", seq, "d", payload)
  redis.call("SET", marker, seq, "EX", room.ttl)
  redis.call(room.publish, room.channel, digits(seq) .. ":" .. payload)
  return seq, 1
end
