-- stream.lua: a creator goes live, is seen, or ends a stream, atomically on
-- the creator's shard. Not money: kept in one script so that two pages
-- going live at once make one stream, and an end that races a heartbeat or
-- another end ends the stream once.
--
-- The live stream, if any, is in the creator's profile (so that the gift
-- path reads it with the profile it already reads): `stream_id`,
-- `stream_started`, `stream_seen`. Every stream also has a record of its
-- own, kept for the creator's earnings by stream, and its id in the
-- creator's list of streams by when each started.
--
-- KEYS[1]  profile  HASH {w:creator}:creator
-- KEYS[2]  streams  ZSET {w:creator}:streams   stream id by when it started (ms)
-- KEYS[3]  record   HASH {w:creator}:stream:<ARGV[2]>  id, started, seen, ended, end_reason
-- ARGV[1]  "start", "beat" or "end"
-- ARGV[2]  start: the id a new stream takes; beat and end: the stream's id
-- ARGV[3]  now, ms
-- ARGV[4]  end: why ("ended" by the creator, "idle" for the server's own
--          end); start: how long records are kept, s
-- ARGV[5]  end, "idle" only: the stream is ended only if not seen since
--          this time (ms)
--
-- Returns {outcome, stream id, started, ended}:
--   start: "started" (a new stream) or "live" (the current one, unchanged)
--   beat:  "seen", or "not_live" when the id is not the live stream
--   end:   "ended" (ended now), "already_ended" (ended before: its record),
--          "seen" (idle end only: seen since the cutoff, still live), or
--          "unknown" (no such stream)

local op, id, now = ARGV[1], ARGV[2], ARGV[3]
local live = redis.call("HMGET", KEYS[1], "stream_id", "stream_started", "stream_seen")
local live_id, live_started, live_seen = live[1], live[2], live[3]

if op == "start" then
  if live_id then
    return {"live", live_id, live_started, ""}
  end
  redis.call("HSET", KEYS[1], "stream_id", id, "stream_started", now, "stream_seen", now)
  redis.call("ZADD", KEYS[2], now, id)
  redis.call("HSET", KEYS[3], "id", id, "started", now, "seen", now)
  -- Records older than the retention go; the list keeps the rest.
  local oldest = tonumber(now) - tonumber(ARGV[4]) * 1000
  redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", "(" .. string.format("%d", oldest))
  redis.call("EXPIRE", KEYS[3], ARGV[4])
  return {"started", id, now, ""}
end

if op == "beat" then
  if live_id ~= id then
    return {"not_live", id, "", ""}
  end
  redis.call("HSET", KEYS[1], "stream_seen", now)
  redis.call("HSET", KEYS[3], "seen", now)
  return {"seen", id, live_started, ""}
end

if op == "end" then
  if live_id ~= id then
    local record = redis.call("HMGET", KEYS[3], "started", "ended")
    if record[2] then
      return {"already_ended", id, record[1], record[2]}
    end
    return {"unknown", id, "", ""}
  end
  if ARGV[4] == "idle" and tonumber(live_seen or "0") >= tonumber(ARGV[5]) then
    return {"seen", id, live_started, ""}
  end
  redis.call("HDEL", KEYS[1], "stream_id", "stream_started", "stream_seen")
  redis.call("HSET", KEYS[3], "ended", now, "end_reason", ARGV[4], "seen", live_seen or now)
  return {"ended", id, live_started, now}
end

return redis.error_reply("ERR stream.lua: unknown operation")
