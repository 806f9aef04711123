-- lib_credit.lua: a creator credited for one gift, for the scripts that
-- credit (settle.lua, room_gifts.lua). Not a script of its own: the server
-- puts it in front of a script's text (server/store/scripts.py).
--
-- No diamond is rounded away. The creator's share of a gift is counted in
-- hundredths of a diamond (coins * share percent) and added to the carry
-- the creator already holds (the wallet's `carry_hundredths`, 0 to 99):
-- whole diamonds are credited, the rest is carried to the creator's next
-- gift. Seventeen one-coin roses at 50% credit 8 diamonds and carry 50.
-- The platform's share is the rest of the gift, exactly, in hundredths of
-- a coin: coins * (100 - share). So for every gift
--   100 * coins = (100 * diamonds + carry after - carry before) + platform
-- and for every creator
--   100 * received = 100 * diamonds earned + carry + platform,
-- which reconcile checks (server/money/reconcile.py).
--
-- credit_gift(ledger, prev, gift_key, coins, share, carry, now, sender, gift,
-- count, paid, stream) writes the gift's `credit` entry in the creator's
-- ledger, after the entry whose hash is `prev` (lib_chain.lua), and returns
-- diamonds, carry after, platform hundredths and the entry's hash. coins, share and carry are
-- numbers (coins * 100 below 2^53, which the callers check; share 0 to
-- 100; carry 0 to 99); the others are strings, written as they are: the
-- entry carries what the earnings reports count, the stream ("" when the
-- gift was paid outside one) included. The caller adds the
-- results to the creator's wallet and passes the carry and the hash on to
-- the next gift.
--
-- credit_split(coins, share, carry) is the arithmetic alone: diamonds, carry
-- after and platform hundredths, for room_gifts.lua, which writes a call's
-- credits as one `credits` entry (server/core/credit_entries.py).

local function credit_split(coins, share, carry)
  local owed = carry + coins * share
  local diamonds = math.floor(owed / 100)
  return diamonds, owed - diamonds * 100, coins * (100 - share)
end

local function credit_gift(ledger, prev, gift_key, coins, share, carry, now, sender, gift, count,
    paid, stream)
  local diamonds, carry_after, platform = credit_split(coins, share, carry)
  local hash = chained_entry(ledger, prev,
    "kind", "credit", "gift_key", gift_key, "coins", string.format("%d", coins),
    "share", string.format("%d", share), "diamonds", string.format("%d", diamonds),
    "carry_hundredths", string.format("%d", carry_after),
    "platform_hundredths", string.format("%d", platform),
    "ts", now, "sender", sender, "gift", gift, "count", count, "paid", paid, "stream", stream)
  return diamonds, carry_after, platform, hash
end
