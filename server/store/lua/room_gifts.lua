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
-- KEYS[3]          combos   HASH   {r:room}:combos (lib_combo.lua)
-- KEYS[4]          creator wallet  HASH   {w:creator}:wallet (the room's creator)
-- KEYS[5]          creator ledger  STREAM {w:creator}:ledger
-- KEYS[6]          reports pending SET    creators with credits to count (reports.py)
-- KEYS[7+3(i-1)..] gift i: gift.lua's first three KEYS (wallet, ledger, request)
-- ARGV[1..6]       room_event.lua's: channel, history length, marker ttl,
--                  PUBLISH or SPUBLISH, combo window, room id
-- ARGV[7]          the creator's user id
-- ARGV[8+16(i-1)..] gift i: gift.lua's fourteen ARGV (its creator and room
--                  are this call's), then its event's payload (encoded,
--                  without seq), then "1" when the gift is streakable (it
--                  counts in its sender's combo, which its event carries)
--
-- Gifts run in order, each checked as gift.lua checks it. A gift paid for
-- now gets the room's next seq, which its request record keeps (a retry is
-- answered with it and shown nowhere again), and the creator is credited as
-- settle.lua would credit it (lib_credit.lua's arithmetic, the creator's
-- carry read once and passed from gift to gift), but in one `credits` entry
-- of the creator's ledger for the whole call: a record per gift with a
-- `credit` entry's figures (server/core/credit_entries.py), where an entry
-- per gift was about a fifth of Valkey's time a gift.
-- Once for the call: the creator's wallet fields; the seq; one history entry and
-- one PUBLISH holding every event paid now, the entry as fields s (the
-- first seq), n (how many) and d, the message as "<first seq>:" then d,
-- where d is their payloads one after the other (each is one MessagePack
-- value, so a reader takes them apart in order).
--
-- A streakable gift paid now continues its sender's combo or starts one;
-- a combo it finds lapsed ends first, its combo_end numbered just before the
-- gift's event. The combos the call touches are read with one HMGET and
-- written with one HSET.
--
-- Returns ten values per gift: gift.lua's eight (seq is the event's, new
-- or recorded; 0 for a refusal, or for a duplicate paid through gift.lua,
-- whose caller announces it with room_event.lua), the sender's fan club
-- coins after it (-1: not a member, or not paid now: lib_gift.lua), then
-- published (1 when paid and shown by this call).

local GIFT_KEYS, GIFT_ARGS, HEAD_KEYS, HEAD_ARGS = 3, 14, 6, 7
-- Per gift: gift.lua's arguments, the payload, the streakable flag.
local GIFT_WIDTH = GIFT_ARGS + 2
local REPLY_WIDTH = 10
local gifts = (#KEYS - HEAD_KEYS) / GIFT_KEYS
if gifts < 1 or gifts ~= math.floor(gifts) or #ARGV - HEAD_ARGS ~= gifts * GIFT_WIDTH then
  return redis.error_reply("room_gifts.lua: three keys and sixteen arguments per gift")
end
local room = room_of(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  ARGV[6])
local stored_seq = redis.call("GET", room.seq)
local last_seq = tonumber(stored_seq or "0")
if not last_seq then
  -- Checked before any gift: a damaged seq must not stop the call half way.
  return redis.error_reply("room_gifts.lua: the room's seq is not a number")
end
-- The creator's wallet is read once, before any gift, and written once
-- after the last: sums of whole numbers below 2^53 (for the platform's
-- share, in hundredths: 9 * 10^13 coins), which doubles hold exactly.
local creator_wallet = redis.call("HMGET", KEYS[4],
  "diamonds", "diamonds_earned", "received", "platform_hundredths", "carry_hundredths", "chain")
local carry = tonumber(creator_wallet[5] or "0")
if not carry or carry < 0 or carry > 99 or carry ~= math.floor(carry) then
  return redis.error_reply("room_gifts.lua: the creator's carry_hundredths is not 0 to 99")
end
-- The hash of the last entry of the creator's ledger, passed from credit to
-- credit (lib_chain.lua).
local creator_chain = creator_wallet[6] or ""
local creator = ARGV[7]
-- The combos of the call's streakable gifts, by field, as they stand.
local runs, combo_fields, touched = {}, {}, {}
for i = 0, gifts - 1 do
  -- A sender's wallet read and written as the creator's too would break
  -- both (the server refuses a gift in one's own room before this).
  if KEYS[HEAD_KEYS + i * GIFT_KEYS + 1] == KEYS[4] then
    return redis.error_reply("room_gifts.lua: a gift from the room's creator")
  end
  local arg_base = HEAD_ARGS + i * GIFT_WIDTH
  if ARGV[arg_base + GIFT_WIDTH] == "1" then
    local field = combo_field(ARGV[arg_base + 1], ARGV[arg_base + 3])
    if runs[field] == nil then
      runs[field] = false
      combo_fields[#combo_fields + 1] = field
    end
  end
end
if #combo_fields > 0 then
  local values = redis.call("HMGET", room.combos, unpack(combo_fields))
  for n, field in ipairs(combo_fields) do
    runs[field] = combo_read(values[n]) or false
  end
end
local payloads = {}
local first_seq = last_seq + 1
-- What the creator's wallet gains, written once after the last gift.
local credited_coins, credited_diamonds, credited_platform = 0, 0, 0

-- commit_gift's announce and credit, made once for the call rather than once
-- a gift: the gift's ARGV offset says which gift it is.
local function announce_gift(arg_base)
  local payload = ARGV[arg_base + GIFT_ARGS + 1]
  if ARGV[arg_base + GIFT_WIDTH] == "1" then
    -- The gift's ARGV as gift.lua's: [1] sender, [3] gift, [4] count, [8] now,
    -- [14] the stream; its request key seeds a new combo's id.
    local field = combo_field(ARGV[arg_base + 1], ARGV[arg_base + 3])
    local request_key = KEYS[HEAD_KEYS + (arg_base - HEAD_ARGS) / GIFT_WIDTH * GIFT_KEYS + 3]
    local now = tonumber(ARGV[arg_base + 8])
    local run, ended = combo_hit(runs[field] or nil, request_key, tonumber(ARGV[arg_base + 4]),
      now, room.window, ARGV[arg_base + 14])
    if ended then
      last_seq = last_seq + 1
      payloads[#payloads + 1] = combo_end_event(room.id, field, ended, now)
    end
    runs[field], touched[field] = run, true
    payload = combo_filled(payload, run)
  end
  last_seq = last_seq + 1
  payloads[#payloads + 1] = payload
  return last_seq
end

-- The call's credits, one record a gift paid now, written as one `credits`
-- entry after the last gift (server/core/credit_entries.py), and when the
-- last of them was paid.
local credit_records, credited_at = {}, nil

local function credit_creator(arg_base, cost, share, gift_key)
  -- The gift's ARGV as gift.lua's: [3] gift, [4] count, [8] now, which is
  -- when the gift was paid, [14] the stream.
  local now = ARGV[arg_base + 8]
  local diamonds, platform
  diamonds, carry, platform = credit_split(cost, share, carry)
  credit_records[#credit_records + 1] = gift_key .. "|" .. digits(cost) .. "|" .. digits(share)
    .. "|" .. digits(diamonds) .. "|" .. digits(carry) .. "|" .. digits(platform) .. "|" .. now
    .. "|" .. ARGV[arg_base + 3] .. "|" .. ARGV[arg_base + 4] .. "|" .. ARGV[arg_base + 14]
  credited_at = now
  credited_coins = credited_coins + cost
  credited_diamonds = credited_diamonds + diamonds
  credited_platform = credited_platform + platform
end

local out = {}
for i = 0, gifts - 1 do
  local key_base, arg_base = HEAD_KEYS + i * GIFT_KEYS, HEAD_ARGS + i * GIFT_WIDTH
  if ARGV[arg_base + 6] ~= creator then
    return redis.error_reply("room_gifts.lua: a gift to another creator than the call's")
  end
  local announced, at = #payloads, i * REPLY_WIDTH
  local fan_after
  out[at + 1], out[at + 2], out[at + 3], out[at + 4], out[at + 5], out[at + 6], out[at + 7],
    out[at + 8], fan_after = commit_gift(key_base, arg_base, announce_gift, credit_creator)
  -- The sender's fan club coins after a gift paid now (-1: none, or not paid now).
  out[at + 9] = fan_after or -1
  -- published: this call announced the gift.
  out[at + 10] = #payloads > announced and 1 or 0
end

if #payloads > 0 then
  local events = table.concat(payloads)
  local first_seq_text = digits(first_seq)
  redis.call("SET", room.seq, digits(last_seq))
  redis.call("XADD", room.history, "MAXLEN", "~", room.length, "*",
    "s", first_seq_text, "n", digits(#payloads), "d", events)
  redis.call(room.publish, room.channel, first_seq_text .. ":" .. events)
  -- Every gift paid now has its event and its credit record: one entry holds
  -- the call's credits, chained as any ledger entry.
  creator_chain = chained_entry(KEYS[5], creator_chain, "kind", "credits",
    "n", digits(#credit_records), "ts", credited_at, "d", table.concat(credit_records, ";"))
  local wallet = creator_wallet
  local changed = {}
  for _, field in ipairs(combo_fields) do
    if touched[field] then
      changed[#changed + 1], changed[#changed + 2] = field, combo_text(runs[field])
    end
  end
  if #changed > 0 then
    redis.call("HSET", room.combos, unpack(changed))
  end
  redis.call("HSET", KEYS[4],
    "diamonds", digits(tonumber(wallet[1] or "0") + credited_diamonds),
    "diamonds_earned", digits(tonumber(wallet[2] or "0") + credited_diamonds),
    "received", digits(tonumber(wallet[3] or "0") + credited_coins),
    "platform_hundredths", digits(tonumber(wallet[4] or "0") + credited_platform),
    "carry_hundredths", digits(carry), "chain", creator_chain)
  -- The set lives while creators are marked: a week (the marker ttl) after
  -- the last new mark.
  if redis.call("SADD", KEYS[6], creator) == 1 then
    redis.call("EXPIRE", KEYS[6], ARGV[3])
  end
end
return out
