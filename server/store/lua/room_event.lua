-- room_event.lua: give room events their sequence numbers, keep them, publish
-- them; once per event key, on the room's shard. One call takes every event
-- a room got in one batch (server/room_log.py), one or many.
--
-- KEYS[1]    seq      STRING {r:room}:seq      last sequence number
-- KEYS[2]    history  STREAM {r:room}:history  recent events (fields s, d)
-- KEYS[3]    combos   HASH   {r:room}:combos   open combos (lib_combo.lua)
-- KEYS[3+i]  marker   STRING {r:room}:evt:<event key of event i>   its seq
-- ARGV[1]    channel  {r:room}:events
-- ARGV[2]    history length (approximate cap)
-- ARGV[3]    marker ttl, s
-- ARGV[4]    "SPUBLISH" on a Redis Cluster (sharded pub/sub), else PUBLISH
-- ARGV[5]    combo window, ms
-- ARGV[6]    the room's id
-- ARGV[5+2i] payload of event i: the encoded event, without its seq
-- ARGV[6+2i] its combo: "" for none, else "<sender> <gift> <count> <now ms>
--            <stream id>" for a streakable gift's event, which counts in
--            the sender's combo and carries it (lib_combo.lua)
--
-- Publishes "<seq>:<payload>" for each event, in order (a combo that the
-- gift found lapsed ends first, with a combo_end of its own). Returns
-- {seq_1, published_1, seq_2, published_2, ...}: published is 0 when the
-- event key was seen before (a retried request, or the same key twice in
-- this call), and nothing is repeated, the combo included. The work per
-- event is announce in lib_announce.lua, which room_gifts.lua runs too.

local HEAD_KEYS, HEAD_ARGS = 3, 6
local events = #KEYS - HEAD_KEYS
if events < 1 or #ARGV - HEAD_ARGS ~= 2 * events then
  return redis.error_reply("room_event.lua: one marker key and two arguments per event")
end
local room = room_of(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  ARGV[6])

-- Every combo is read before the first write: a bad one must not stop the
-- call half way.
local combos = {}
for i = 1, events do
  local spec = ARGV[HEAD_ARGS + 2 * i]
  if spec ~= "" then
    local sender, gift, count, now, stream =
      string.match(spec, "^(%S+) (%S+) (%d+) (%d+) ?(%S*)$")
    if not sender then
      return redis.error_reply("room_event.lua: a combo that is not <sender> <gift> <count> <now>")
    end
    combos[i] = {field = combo_field(sender, gift), count = tonumber(count),
      now = tonumber(now), stream = stream}
  end
end

-- A streakable gift's event with its combo counted in.
local function with_combo(marker, payload, combo)
  local run, ended = combo_hit(combo_read(redis.call("HGET", room.combos, combo.field)), marker,
    combo.count, combo.now, room.window, combo.stream)
  if ended then
    publish_event(room, combo_end_event(room.id, combo.field, ended, combo.now))
  end
  redis.call("HSET", room.combos, combo.field, combo_text(run))
  return combo_filled(payload, run)
end

local out = {}
for i = 1, events do
  local marker, payload = KEYS[HEAD_KEYS + i], ARGV[HEAD_ARGS + 2 * i - 1]
  if combos[i] and not announced_as(marker) then
    payload = with_combo(marker, payload, combos[i])
  end
  local seq, published = announce(room, marker, payload)
  out[#out + 1] = seq
  out[#out + 1] = published
end
return out
