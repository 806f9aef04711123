-- withdraw.lua: a creator asks to withdraw diamonds, once per request id, on
-- the creator's shard. The diamonds leave the balance for `reserved`, where
-- they wait until the payout provider says the payout was paid (they move
-- on to `paid_out`) or failed (they come back): payout.lua.
--
-- KEYS[1] wallet     HASH   {w:creator}:wallet (diamonds, reserved, paid_out)
-- KEYS[2] ledger     STREAM {w:creator}:ledger
-- KEYS[3] request    STRING {w:creator}:wreq:<request id> -> withdrawal id
-- KEYS[4] record     HASH   {w:creator}:wd:<withdrawal id>
-- KEYS[5] index      ZSET   {w:creator}:withdrawals (withdrawal id by time asked)
-- KEYS[6] day        STRING {w:creator}:wday:<UTC day> diamonds asked that day
-- ARGV[1] request id       ARGV[2] withdrawal id (new)   ARGV[3] diamonds (digits)
-- ARGV[4] minimum diamonds ARGV[5] daily limit, diamonds ARGV[6] cash amount (text)
-- ARGV[7] currency         ARGV[8] payout method         ARGV[9] now, ms
-- ARGV[10] request record ttl, s   ARGV[11] the UTC day (digits)
--
-- Returns {status, withdrawal id, diamonds held after}:
--   "ok"                    reserved now
--   "duplicate"             this request id was taken before: its withdrawal
--   "below_minimum", "insufficient_diamonds", "daily_limit_exceeded",
--   "bad_argument"          nothing moved (the id is "")

local function digits_only(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[0-9]+$") ~= nil
end

local held = tonumber(redis.call("HGET", KEYS[1], "diamonds") or "0")
local previous = redis.call("GET", KEYS[3])
if previous then
  return {"duplicate", previous, held}
end
if not (digits_only(ARGV[3], 15) and digits_only(ARGV[4], 15) and digits_only(ARGV[5], 15)
        and digits_only(ARGV[9], 15) and digits_only(ARGV[11], 9)) then
  return {"bad_argument", "", held}
end
local diamonds = tonumber(ARGV[3])
if diamonds < tonumber(ARGV[4]) or diamonds < 1 then
  return {"below_minimum", "", held}
end
if diamonds > held then
  return {"insufficient_diamonds", "", held}
end
local asked_today = tonumber(redis.call("GET", KEYS[6]) or "0")
if asked_today + diamonds > tonumber(ARGV[5]) then
  return {"daily_limit_exceeded", "", held}
end

local count = string.format("%d", diamonds)
held = redis.call("HINCRBY", KEYS[1], "diamonds", -diamonds)
local reserved = redis.call("HINCRBY", KEYS[1], "reserved", diamonds)
local chain = chained_entry(KEYS[2], redis.call("HGET", KEYS[1], "chain") or "",
  "kind", "withdraw", "withdrawal", ARGV[2], "req", ARGV[1], "diamonds", count,
  "balance", string.format("%d", held), "reserved", string.format("%d", reserved),
  "ts", ARGV[9])
redis.call("HSET", KEYS[1], "chain", chain)
redis.call("HSET", KEYS[4],
  "id", ARGV[2], "request", ARGV[1], "status", "pending", "diamonds", count,
  "amount", ARGV[6], "currency", ARGV[7], "method", ARGV[8], "day", ARGV[11],
  "created", ARGV[9], "updated", ARGV[9])
redis.call("ZADD", KEYS[5], ARGV[9], ARGV[2])
-- The day's total lives two days: past the day it counts, whatever the clock skew.
redis.call("INCRBY", KEYS[6], diamonds)
redis.call("EXPIRE", KEYS[6], 2 * 86400)
redis.call("SET", KEYS[3], ARGV[2], "EX", ARGV[10])
return {"ok", ARGV[2], held}
