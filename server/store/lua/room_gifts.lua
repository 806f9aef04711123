-- room_gifts.lua: gifts sent in one room, each committed and, if it went
-- through, announced, in one call. On a single Redis node only: it touches
-- the senders' wallets and the room's log, which a Redis Cluster keeps on
-- different slots (there, gift.lua and room_event.lua run one after the
-- other). One round trip per gift instead of two; and a gift is never paid
-- for without being shown, even if the server dies right after.
--
-- KEYS[1]          seq      STRING {r:room}:seq
-- KEYS[2]          history  STREAM {r:room}:history
-- KEYS[3+4(i-1)..] gift i: gift.lua's four KEYS
-- ARGV[1..4]       room_event.lua's: channel, history length, marker ttl,
--                  PUBLISH or SPUBLISH
-- ARGV[5+14(i-1)..] gift i: gift.lua's thirteen ARGV (its room is this
--                  room), then its event's payload (encoded, without seq)
--
-- Gifts run in order, each as gift.lua would run it, with its event
-- numbered and published as soon as it is paid. The event's seq goes into
-- the request's record instead of an event marker: a retry of the request
-- is answered with that seq (as a duplicate) and shown nowhere again.
-- Returns nine values per gift: gift.lua's eight (seq is the event's, new
-- or recorded; 0 for a refusal, or for a duplicate paid through gift.lua,
-- whose caller announces it with room_event.lua), then published (1 when
-- announced by this call).

local GIFT_KEYS, GIFT_ARGS = 4, 13
local gifts = (#KEYS - 2) / GIFT_KEYS
if gifts < 1 or gifts ~= math.floor(gifts) or #ARGV - 4 ~= gifts * (GIFT_ARGS + 1) then
  return redis.error_reply("room_gifts.lua: four keys and fourteen arguments per gift")
end
local room = room_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
local out = {}
for i = 0, gifts - 1 do
  local key_base, arg_base = 2 + i * GIFT_KEYS, 4 + i * (GIFT_ARGS + 1)
  local keys, args = {}, {}
  for k = 1, GIFT_KEYS do keys[k] = KEYS[key_base + k] end
  for a = 1, GIFT_ARGS do args[a] = ARGV[arg_base + a] end
  local published = 0
  local outcome = commit_gift(keys, args, function()
    published = 1
    return number_and_publish(room, ARGV[arg_base + GIFT_ARGS + 1])
  end)
  for v = 1, 8 do out[#out + 1] = outcome[v] end
  out[#out + 1] = published
end
return out
