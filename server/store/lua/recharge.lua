-- recharge.lua: credit the coins of a paid order, exactly once, on the buyer's shard.
--
-- KEYS[1] wallet   HASH   {w:user}:wallet  (coins, recharged, bonus, ...)
-- KEYS[2] ledger   STREAM {w:user}:ledger
-- KEYS[3] payment  STRING {w:user}:pay:<payment id>    idempotency by provider id
-- KEYS[4] order    STRING {w:user}:paid:<order id>     one credit per order
-- ARGV[1] payment id   ARGV[2] order id   ARGV[3] coins (digits)
-- ARGV[4] bonus coins (digits)            ARGV[5] now, ms
--
-- Returns {status, balance}:
--   {"ok", balance after}          credited now
--   {"duplicate", balance}         this payment was already credited
--   {"order_paid", balance}        the order was credited by another payment:
--                                  nothing moved; the operator refunds one
--   {"bad_argument", 0}            nothing moved

local function coins_of(text)
  return type(text) == "string" and #text <= 9 and string.match(text, "^[0-9]+$") ~= nil
end
local balance = tonumber(redis.call("HGET", KEYS[1], "coins") or "0")
if redis.call("EXISTS", KEYS[3]) == 1 then
  return {"duplicate", balance}
end
if redis.call("EXISTS", KEYS[4]) == 1 then
  return {"order_paid", balance}
end
if not (coins_of(ARGV[3]) and coins_of(ARGV[4])) then
  return {"bad_argument", 0}
end
local coins = tonumber(ARGV[3])
local bonus = tonumber(ARGV[4])

balance = redis.call("HINCRBY", KEYS[1], "coins", coins + bonus)
redis.call("HINCRBY", KEYS[1], "recharged", coins)
redis.call("HINCRBY", KEYS[1], "bonus", bonus)
local chain = chained_entry(KEYS[2], redis.call("HGET", KEYS[1], "chain") or "",
  "kind", "recharge", "payment", ARGV[1], "order", ARGV[2],
  "amount", string.format("%d", coins + bonus), "bonus", string.format("%d", bonus),
  "balance", string.format("%d", balance), "ts", ARGV[5])
redis.call("HSET", KEYS[1], "chain", chain)
-- Payment records never expire: a provider may redeliver a callback days later.
redis.call("SET", KEYS[3], ARGV[2])
redis.call("SET", KEYS[4], ARGV[1])
return {"ok", balance}
