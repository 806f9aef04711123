-- settle.lua: credit a creator for a batch of gifts, each exactly once, on
-- the creator's shard.
--
-- One call takes any number N >= 1 of gifts to the same creator. Each gift
-- is checked and credited on its own, in order, exactly as if it had been
-- settled alone; the wallet's fields are summed over the batch and written
-- once each. The creator's earnings reports are not written here: they are
-- counted later from the credit entries this writes in the ledger
-- (report.lua, server/money/reports.py), off the gift's path.
--
-- KEYS[1]        wallet   HASH   {w:creator}:wallet  (diamonds, received,
--                                 carry_hundredths, platform_hundredths, ...)
-- KEYS[2]        ledger   STREAM {w:creator}:ledger
-- KEYS[2+i]      settled STRING {w:creator}:settled:<gift key>, one per gift, in order
-- ARGV[1] now, ms          ARGV[2] idempotency ttl, s
-- then 8 fields per gift:
--   gift key (sender:request id), coins paid (digits), revenue share percent,
--   sender user id, gift id ("" when the outbox entry predates gift ids),
--   count (digits; 0 when unknown), when the gift was paid (ms, digits),
--   the room's stream when it was paid ("" when none, or unknown)
--
-- Returns 3 values per gift, in order, {status, diamonds, duplicate}:
--   "ok", diamonds credited, 0        credited now
--   "ok", diamonds credited, 1        already credited: nothing moved
--   "bad_argument", 0, 0              this gift is malformed: nothing moved for it
-- A malformed call (key or argument counts that do not match, coins that
-- would not add up exactly, or a damaged carry in the wallet) is an error
-- reply, and nothing moves at all.
--
-- Each gift's credit is credit_gift in lib_credit.lua (its ledger entry;
-- whole diamonds of the creator's share plus the carry, the rest carried
-- to the next gift; the platform's share exact, in hundredths), which
-- room_gifts.lua runs too. The carry is read once, passed from gift to gift
-- in order, and written once.

local FIELDS = 8
local function is_digits(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[0-9]+$") ~= nil
end

-- Checks of the whole call, before anything is read or written.
local gifts = (#ARGV - 2) / FIELDS
if not (is_digits(ARGV[1], 15) and is_digits(ARGV[2], 10))
    or gifts < 1 or gifts ~= math.floor(gifts) or #KEYS ~= 2 + gifts then
  return redis.error_reply("ERR settle.lua: key and argument counts do not match")
end
-- Lua numbers are doubles: sums stay exact below 2^53, which the caller's
-- batches are cut to respect (in hundredths: the platform's share).
local batch_coins = 0
for i = 0, gifts - 1 do
  local coins = ARGV[2 + i * FIELDS + 2]
  if is_digits(coins, 15) then
    batch_coins = batch_coins + tonumber(coins)
  end
end
if batch_coins * 100 >= 2 ^ 53 then
  return redis.error_reply("ERR settle.lua: the batch's coins do not add up exactly")
end

local function gift_is_valid(base)
  local coins, share, sender, gift = ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local count, paid_at, stream = ARGV[base + 6], ARGV[base + 7], ARGV[base + 8]
  return is_digits(coins, 15) and is_digits(share, 3) and tonumber(share) <= 100
    and is_digits(count, 9) and is_digits(paid_at, 15)
    and string.match(stream, "^[A-Za-z0-9_-]*$") ~= nil and #stream <= 64
    and string.match(sender, "^[A-Za-z0-9_-]+$") ~= nil
    and string.match(gift, "^[a-z0-9_]*$") ~= nil and #gift <= 32
end

local held = redis.call("HMGET", KEYS[1], "carry_hundredths", "chain")
local carry = tonumber(held[1] or "0")
-- The hash of the last entry of the ledger, passed from credit to credit
-- (lib_chain.lua).
local chain = held[2] or ""
if not carry or carry < 0 or carry > 99 or carry ~= math.floor(carry) then
  return redis.error_reply("ERR settle.lua: the wallet's carry_hundredths is not 0 to 99")
end

local replies = {}
local diamonds_sum, coins_sum, platform_sum = 0, 0, 0

for i = 0, gifts - 1 do
  local base = 2 + i * FIELDS
  local settled_key = KEYS[2 + i + 1]
  local previous = redis.call("GET", settled_key)
  if previous then
    replies[#replies + 1] = "ok"
    replies[#replies + 1] = tonumber(previous)
    replies[#replies + 1] = 1
  elseif not gift_is_valid(base) then
    replies[#replies + 1] = "bad_argument"
    replies[#replies + 1] = 0
    replies[#replies + 1] = 0
  else
    local coins = tonumber(ARGV[base + 2])
    local diamonds, platform
    diamonds, carry, platform, chain = credit_gift(KEYS[2], chain, ARGV[base + 1], coins,
      tonumber(ARGV[base + 3]), carry, ARGV[1], ARGV[base + 4], ARGV[base + 5],
      ARGV[base + 6], ARGV[base + 7], ARGV[base + 8])
    diamonds_sum = diamonds_sum + diamonds
    coins_sum = coins_sum + coins
    platform_sum = platform_sum + platform
    redis.call("SET", settled_key, digits(diamonds), "EX", ARGV[2])
    replies[#replies + 1] = "ok"
    replies[#replies + 1] = diamonds
    replies[#replies + 1] = 0
  end
end

if coins_sum > 0 or diamonds_sum > 0 then
  redis.call("HINCRBY", KEYS[1], "diamonds", digits(diamonds_sum))
  redis.call("HINCRBY", KEYS[1], "diamonds_earned", digits(diamonds_sum))
  redis.call("HINCRBY", KEYS[1], "received", digits(coins_sum))
  redis.call("HINCRBY", KEYS[1], "platform_hundredths", digits(platform_sum))
  redis.call("HSET", KEYS[1], "carry_hundredths", digits(carry), "chain", chain)
end
return replies
