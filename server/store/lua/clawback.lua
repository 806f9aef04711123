-- clawback.lua: a paid order's coins taken back, once per order, on the
-- buyer's shard: an operator's refund (a minor's recharge on a guardian's
-- request, fraud, ...) or the payment provider's refund or chargeback.
--
-- Coins are non-refundable except this way. What the order credited (its
-- coins and bonus) is taken back as far as the wallet still holds it; what
-- was already spent (on gifts, credited to creators, whose diamonds stay
-- theirs) is recorded as the order's shortfall. A wallet never goes
-- negative. A chargeback also flags the account: new orders are refused
-- until an operator clears it.
--
-- KEYS[1] wallet  HASH   {w:user}:wallet  (coins, refunded, shortfall, flagged)
-- KEYS[2] ledger  STREAM {w:user}:ledger
-- KEYS[3] paid    STRING {w:user}:paid:<order id>  (recharge.lua: the order was credited)
-- KEYS[4] claw    STRING {w:user}:claw:<order id>  "<kind>|<taken>|<shortfall>|<ms>"
-- ARGV[1] order id   ARGV[2] "refund" or "chargeback"   ARGV[3] coins the order
-- credited (coins + bonus, digits)   ARGV[4] reason   ARGV[5] now, ms
--
-- Returns {status, taken, shortfall, balance}:
--   {"ok", taken, shortfall, balance after}   taken back now
--   {"duplicate", taken, shortfall, balance}  this order was taken back before
--                                             (by either kind): its first outcome
--   {"not_paid", 0, 0, balance}               no credit of this order: nothing moved
--   {"bad_argument", 0, 0, 0}                 nothing moved

local balance = tonumber(redis.call("HGET", KEYS[1], "coins") or "0")
local before = redis.call("GET", KEYS[4])
if before then
  local _, taken, shortfall = string.match(before, "^([^|]*)|(%d+)|(%d+)|")
  return {"duplicate", tonumber(taken), tonumber(shortfall), balance}
end
local kind, credited = ARGV[2], ARGV[3]
if (kind ~= "refund" and kind ~= "chargeback")
    or not string.match(credited, "^[0-9]+$") or #credited > 15 then
  return {"bad_argument", 0, 0, 0}
end
if redis.call("EXISTS", KEYS[3]) == 0 then
  return {"not_paid", 0, 0, balance}
end
credited = tonumber(credited)
local taken = math.min(balance, credited)
local shortfall = credited - taken
balance = balance - taken
redis.call("HSET", KEYS[1], "coins", string.format("%d", balance))
redis.call("HINCRBY", KEYS[1], "refunded", taken)
if shortfall > 0 then
  redis.call("HINCRBY", KEYS[1], "shortfall", shortfall)
end
if kind == "chargeback" then
  redis.call("HSET", KEYS[1], "flagged", "1")
end
local chain = chained_entry(KEYS[2], redis.call("HGET", KEYS[1], "chain") or "",
  "kind", kind, "order", ARGV[1], "amount", string.format("%d", -taken),
  "shortfall", string.format("%d", shortfall), "balance", string.format("%d", balance),
  "reason", ARGV[4], "ts", ARGV[5])
redis.call("HSET", KEYS[1], "chain", chain)
-- Kept for good: a provider may send its callback again months later.
redis.call("SET", KEYS[4],
  kind .. "|" .. string.format("%d|%d|", taken, shortfall) .. ARGV[5])
return {"ok", taken, shortfall, balance}
