-- room_replay.lua: what a joining viewer needs to know, read at one instant,
-- on the room's shard: the last seq, the epoch, and the events it missed.
--
-- KEYS[1] seq      STRING {r:room}:seq      last sequence number
-- KEYS[2] history  STREAM {r:room}:history  recent events: fields s (the
--                  entry's first seq), d (its events, one MessagePack map
--                  after another) and, when it holds more than one, n
-- KEYS[3] epoch    STRING {r:room}:epoch    names this run of the sequence
-- ARGV[1] since    the last seq the viewer saw (digits), or "" for none
-- ARGV[2] most events to replay (digits)
-- ARGV[3] the epoch's time to live, seconds (digits): every look renews it
--
-- Returns {last seq, epoch, status, entries}. status is one of
--   "none"            no since was given; entries is empty
--   "ok"              entries holds every event after since, as history
--                     entries: first seq, events, first seq, events, ...
--                     oldest first; the oldest may begin at or before since
--                     (the reader drops what it has seen)
--   "too_far_behind"  more was missed than the history holds or may replay
--   "ahead"           since is beyond the last seq: it is from another epoch
-- History entries carry consecutive seqs (room_event.lua and room_gifts.lua
-- write each entry in the same step as its seqs), so the newest entries back
-- to the one holding since+1 are exactly since+1 .. last when the history
-- still reaches back that far. Each entry holds at least one event: `missed`
-- entries always reach back far enough.

local last = tonumber(redis.call("GET", KEYS[1]) or "0")
local epoch = redis.call("GET", KEYS[3])
if not epoch then
  -- The first look at this room, or its keys were lost (a wiped or
  -- restored-from-nothing Redis): a new epoch, so that clients holding
  -- seqs of an earlier run are told to resync rather than resumed.
  local now = redis.call("TIME")
  epoch = now[1] .. string.format("%06d", tonumber(now[2]))
  redis.call("SET", KEYS[3], epoch, "EX", ARGV[3])
else
  -- Anyone may look at any room id, so the epoch is written with a time to
  -- live and kept while viewers come: a room no one opens for that long
  -- starts a new epoch, and its returning viewers resync.
  redis.call("EXPIRE", KEYS[3], ARGV[3])
end
if ARGV[1] == "" then
  return {last, epoch, "none", {}}
end
if not string.match(ARGV[1], "^[0-9]+$") or #ARGV[1] > 15 or not string.match(ARGV[2], "^[0-9]+$") then
  return {last, epoch, "too_far_behind", {}}
end
local since = tonumber(ARGV[1])
if since > last then
  return {last, epoch, "ahead", {}}
end
local missed = last - since
if missed == 0 then
  return {last, epoch, "ok", {}}
end
if missed > tonumber(ARGV[2]) then
  return {last, epoch, "too_far_behind", {}}
end
local entries = redis.call("XREVRANGE", KEYS[2], "+", "-", "COUNT", missed)
local out = {}
local reached = false
local taken = 0
for i = 1, #entries do
  local fields = entries[i][2]
  local seq, payload
  for j = 1, #fields, 2 do
    if fields[j] == "s" then seq = fields[j + 1] elseif fields[j] == "d" then payload = fields[j + 1] end
  end
  taken = i
  if tonumber(seq) <= since + 1 then
    reached = true
    break
  end
end
if not reached then
  return {last, epoch, "too_far_behind", {}}
end
for i = taken, 1, -1 do
  local fields = entries[i][2]
  for j = 1, #fields, 2 do
    if fields[j] == "s" then out[#out + 1] = fields[j + 1] end
  end
  for j = 1, #fields, 2 do
    if fields[j] == "d" then out[#out + 1] = fields[j + 1] end
  end
end
return {last, epoch, "ok", out}
