-- room_gifts.lua: gifts sent in one room, each paid for, credited to the
-- room's creator and shown, in one call. On a single Redis node only: it
-- touches the senders' wallets, the creator's and the room's log, which a
-- Redis Cluster keeps on different slots (there, gift.lua, room_event.lua and
-- settle.lua run one after the other). One round trip per call of up to a
-- few gifts; no pending credit to settle; and a gift is never paid for
-- without being credited and shown, even if the server dies right after.
--
-- KEYS[1]          seq      STRING {r:room}:seq
-- KEYS[2]          history  STREAM {r:room}:history
-- KEYS[3]          creator wallet  HASH   {w:creator}:wallet (the room's creator)
-- KEYS[4]          creator ledger  STREAM {w:creator}:ledger
-- KEYS[5]          reports pending SET    creators with credits to count (reports.py)
-- KEYS[6+3(i-1)..] gift i: gift.lua's first three KEYS (wallet, ledger, request)
-- ARGV[1..4]       room_event.lua's: channel, history length, marker ttl,
--                  PUBLISH or SPUBLISH
-- ARGV[5]          the creator's user id
-- ARGV[6+14(i-1)..] gift i: gift.lua's thirteen ARGV (its creator and room
--                  are this call's), then its event's payload (encoded,
--                  without seq)
--
-- Gifts run in order, each checked as gift.lua checks it. A gift paid for
-- now gets the room's next seq, which its request record keeps (a retry is
-- answered with it and shown nowhere again), and the creator is credited as
-- settle.lua would credit it: a `credit` entry in the creator's ledger. Once
-- for the call: the creator's wallet fields; the seq; one history entry and
-- one PUBLISH holding every event paid now, the entry as fields s (the
-- first seq), n (how many) and d, the message as "<first seq>:" then d,
-- where d is their payloads one after the other (each is one MessagePack
-- value, so a reader takes them apart in order).
--
-- Returns nine values per gift: gift.lua's eight (seq is the event's, new
-- or recorded; 0 for a refusal, or for a duplicate paid through gift.lua,
-- whose caller announces it with room_event.lua), then published (1 when
-- paid and shown by this call).

local GIFT_KEYS, GIFT_ARGS, HEAD_KEYS, HEAD_ARGS = 3, 13, 5, 5
local gifts = (#KEYS - HEAD_KEYS) / GIFT_KEYS
if gifts < 1 or gifts ~= math.floor(gifts) or #ARGV - HEAD_ARGS ~= gifts * (GIFT_ARGS + 1) then
  return redis.error_reply("room_gifts.lua: three keys and fourteen arguments per gift")
end
local room = room_of(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
local stored_seq = redis.call("GET", room.seq)
local last_seq = tonumber(stored_seq or "0")
if not last_seq then
  -- Checked before any gift: a damaged seq must not stop the call half way.
  return redis.error_reply("room_gifts.lua: the room's seq is not a number")
end
local creator = ARGV[5]
local payloads = {}
local first_seq = last_seq + 1
local credited = {coins = 0, diamonds = 0, platform = 0}

local out = {}
for i = 0, gifts - 1 do
  local key_base, arg_base = HEAD_KEYS + i * GIFT_KEYS, HEAD_ARGS + i * (GIFT_ARGS + 1)
  local keys, args = {}, {}
  for k = 1, GIFT_KEYS do keys[k] = KEYS[key_base + k] end
  for a = 1, GIFT_ARGS do args[a] = ARGV[arg_base + a] end
  if args[6] ~= creator then
    return redis.error_reply("room_gifts.lua: a gift to another creator than the call's")
  end
  local payload = ARGV[arg_base + GIFT_ARGS + 1]
  local published = 0
  local function announce()
    published = 1
    last_seq = last_seq + 1
    payloads[#payloads + 1] = payload
    return last_seq
  end
  local function credit(cost, share, gift_key)
    local diamonds, platform = credit_gift(KEYS[4], gift_key, cost, share, args[8],
      args[1], args[3], args[4], args[8])
    credited.coins = credited.coins + cost
    credited.diamonds = credited.diamonds + diamonds
    credited.platform = credited.platform + platform
  end
  local outcome = commit_gift(keys, args, announce, credit)
  for v = 1, 8 do out[#out + 1] = outcome[v] end
  out[#out + 1] = published
end

if #payloads > 0 then
  local events = table.concat(payloads)
  redis.call("SET", room.seq, digits(last_seq))
  redis.call("XADD", room.history, "MAXLEN", "~", room.length, "*",
    "s", digits(first_seq), "n", digits(#payloads), "d", events)
  redis.call(room.publish, room.channel, digits(first_seq) .. ":" .. events)
  local wallet = redis.call("HMGET", KEYS[3], "diamonds", "diamonds_earned", "received", "platform")
  redis.call("HSET", KEYS[3],
    "diamonds", digits(tonumber(wallet[1] or "0") + credited.diamonds),
    "diamonds_earned", digits(tonumber(wallet[2] or "0") + credited.diamonds),
    "received", digits(tonumber(wallet[3] or "0") + credited.coins),
    "platform", digits(tonumber(wallet[4] or "0") + credited.platform))
  -- The set lives while creators are marked: a week (the marker ttl) after
  -- the last new mark.
  if redis.call("SADD", KEYS[5], creator) == 1 then
    redis.call("EXPIRE", KEYS[5], ARGV[3])
  end
end
return out
