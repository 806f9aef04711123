-- lib_credit.lua: a creator credited for one gift, for the scripts that
-- credit (settle.lua, room_gifts.lua). Not a script of its own: the server
-- puts it in front of a script's text (server/store/scripts.py).
--
-- credit_gift(ledger, gift_key, coins, share, now, sender, gift, count, paid)
-- writes the gift's `credit` entry in the creator's ledger and returns
-- diamonds, platform: diamonds = floor(coins * share / 100), and the
-- platform keeps the rest, so that coins = diamonds + platform exactly. The
-- caller adds them to the creator's wallet. coins and share are numbers (an
-- integer below 2^53, and 0 to 100); the others are strings, written as
-- they are: the entry carries what the earnings reports count.

local function credit_gift(ledger, gift_key, coins, share, now, sender, gift, count, paid)
  local diamonds = math.floor(coins * share / 100)
  local platform = coins - diamonds
  redis.call("XADD", ledger, "*",
    "kind", "credit", "gift_key", gift_key, "coins", string.format("%d", coins),
    "diamonds", string.format("%d", diamonds), "platform", string.format("%d", platform),
    "ts", now, "sender", sender, "gift", gift, "count", count, "paid", paid)
  return diamonds, platform
end
