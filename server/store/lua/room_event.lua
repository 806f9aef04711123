-- room_event.lua: give room events their sequence numbers, keep them, publish
-- them; once per event key, on the room's shard. One call takes every event
-- a room got in one batch (server/room_log.py), one or many.
--
-- KEYS[1]    seq      STRING {r:room}:seq      last sequence number
-- KEYS[2]    history  STREAM {r:room}:history  recent events (fields s, d)
-- KEYS[2+i]  marker   STRING {r:room}:evt:<event key of event i>   its seq
-- ARGV[1]    channel  {r:room}:events
-- ARGV[2]    history length (approximate cap)
-- ARGV[3]    marker ttl, s
-- ARGV[4]    "SPUBLISH" on a Redis Cluster (sharded pub/sub), else PUBLISH
-- ARGV[4+i]  payload of event i: the encoded event, without its seq
--
-- Publishes "<seq>:<payload>" for each event, in order. Returns
-- {seq_1, published_1, seq_2, published_2, ...}: published is 0 when the
-- event key was seen before (a retried request, or the same key twice in
-- this call), and nothing is repeated. The work per event is announce in
-- lib_announce.lua, which room_gifts.lua runs too.

local events = #KEYS - 2
if events < 1 or #ARGV - 4 ~= events then
  return redis.error_reply("room_event.lua: one marker key and one payload per event")
end
local room = room_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
local out = {}
for i = 1, events do
  local seq, published = announce(room, KEYS[2 + i], ARGV[4 + i])
  out[#out + 1] = seq
  out[#out + 1] = published
end
return out
