-- settle.lua: credit a creator for one gift, exactly once, on the creator's shard.
--
-- KEYS[1] wallet   HASH   {w:creator}:wallet  (diamonds, received, platform, ...)
-- KEYS[2] ledger   STREAM {w:creator}:ledger
-- KEYS[3] settled  STRING {w:creator}:settled:<gift key>  idempotency record
-- ARGV[1] gift key (sender:request id)   ARGV[2] coins the sender paid (digits)
-- ARGV[3] revenue share percent          ARGV[4] now, ms
-- ARGV[5] idempotency ttl, s
--
-- Returns {status, diamonds, duplicate}:
--   {"ok", diamonds credited, 0}   credited now
--   {"ok", diamonds credited, 1}   already credited: nothing moved
--   {"bad_argument", 0, 0}         nothing moved
--
-- diamonds = floor(coins * share / 100); the platform keeps coins - diamonds,
-- so that for every gift coins debited = diamonds + platform share exactly.

local previous = redis.call("GET", KEYS[3])
if previous then
  return {"ok", tonumber(previous), 1}
end
local function digits(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[0-9]+$") ~= nil
end
if not (digits(ARGV[2], 15) and digits(ARGV[3], 3)) or tonumber(ARGV[3]) > 100 then
  return {"bad_argument", 0, 0}
end
local coins = tonumber(ARGV[2])
local diamonds = math.floor(coins * tonumber(ARGV[3]) / 100)
local platform = coins - diamonds

redis.call("HINCRBY", KEYS[1], "diamonds", diamonds)
redis.call("HINCRBY", KEYS[1], "diamonds_earned", diamonds)
redis.call("HINCRBY", KEYS[1], "received", coins)
redis.call("HINCRBY", KEYS[1], "platform", platform)
redis.call("XADD", KEYS[2], "*",
  "kind", "credit", "gift_key", ARGV[1], "coins", coins,
  "diamonds", diamonds, "platform", platform, "ts", ARGV[4])
redis.call("SET", KEYS[3], diamonds, "EX", ARGV[5])
return {"ok", diamonds, 0}
