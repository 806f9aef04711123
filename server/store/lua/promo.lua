-- promo.lua: promotional coins the operator grants a user, once per request
-- id, on the user's shard. Counted apart from coins bought (`recharged`) and
-- from a package's bonus (`bonus`), in the wallet's `promo`, and ledgered as
-- `promo`.
--
-- KEYS[1] wallet  HASH   {w:user}:wallet
-- KEYS[2] ledger  STREAM {w:user}:ledger
-- KEYS[3] record  STRING {w:user}:promo:<request id> (never expires: a grant
--                        retried years later still credits nothing twice)
-- ARGV[1] request id   ARGV[2] coins (digits)   ARGV[3] reason
-- ARGV[4] who granted it                        ARGV[5] now, ms
--
-- Returns {status, balance}: "ok" granted now, "duplicate" granted before
-- (nothing moved), "bad_argument" (nothing moved).

local balance = tonumber(redis.call("HGET", KEYS[1], "coins") or "0")
if redis.call("EXISTS", KEYS[3]) == 1 then
  return {"duplicate", balance}
end
local coins_text = ARGV[2]
if not (type(coins_text) == "string" and #coins_text <= 9
        and string.match(coins_text, "^[1-9][0-9]*$")) then
  return {"bad_argument", balance}
end
local coins = tonumber(coins_text)
balance = redis.call("HINCRBY", KEYS[1], "coins", coins)
redis.call("HINCRBY", KEYS[1], "promo", coins)
local chain = chained_entry(KEYS[2], redis.call("HGET", KEYS[1], "chain") or "",
  "kind", "promo", "req", ARGV[1], "amount", coins_text, "balance", string.format("%d", balance),
  "reason", ARGV[3], "by", ARGV[4], "ts", ARGV[5])
redis.call("HSET", KEYS[1], "chain", chain)
redis.call("SET", KEYS[3], coins_text)
return {"ok", balance}
