-- room_event.lua: give a room event its sequence number, keep it, publish it;
-- once per event key, on the room's shard.
--
-- KEYS[1] seq      STRING {r:room}:seq      last sequence number
-- KEYS[2] history  STREAM {r:room}:history  recent events (fields s, d)
-- KEYS[3] marker   STRING {r:room}:evt:<event key>   seq of this event
-- ARGV[1] channel  {r:room}:events
-- ARGV[2] payload  the encoded event, without its seq
-- ARGV[3] history length (approximate cap)
-- ARGV[4] marker ttl, s
-- ARGV[5] "SPUBLISH" on a Redis Cluster (sharded pub/sub), else PUBLISH
--
-- Publishes "<seq>:<payload>". Returns {seq, published}: published is 0 when
-- the event key was seen before (a retried request), and nothing is repeated.

local previous = redis.call("GET", KEYS[3])
if previous then
  return {tonumber(previous), 0}
end
local seq = redis.call("INCR", KEYS[1])
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[3], "*", "s", seq, "d", ARGV[2])
redis.call("SET", KEYS[3], seq, "EX", ARGV[4])
redis.call(ARGV[5] == "SPUBLISH" and "SPUBLISH" or "PUBLISH", ARGV[1], seq .. ":" .. ARGV[2])
return {seq, 1}
