-- settle.lua: credit a creator for one gift, exactly once, on the creator's
-- shard; and count it in the creator's earnings reports.
--
-- KEYS[1]  wallet    HASH   {w:creator}:wallet  (diamonds, received, platform, ...)
-- KEYS[2]  ledger    STREAM {w:creator}:ledger
-- KEYS[3]  settled   STRING {w:creator}:settled:<gift key>  idempotency record
-- KEYS[4]  day       HASH   {w:creator}:earn:d:<day>   one UTC day's totals (below)
-- KEYS[5]  day by coins     ZSET {w:creator}:earn:d:<day>:coins     sender -> coins
-- KEYS[6]  day by diamonds  ZSET {w:creator}:earn:d:<day>:diamonds  sender -> diamonds
-- KEYS[7]  all       HASH   {w:creator}:earn:all       totals since reports began
-- KEYS[8]  all by coins     ZSET {w:creator}:earn:all:coins
-- KEYS[9]  all by diamonds  ZSET {w:creator}:earn:all:diamonds
-- KEYS[10] stream    HASH   {w:creator}:earn:stream    the current stream's totals
-- KEYS[11] stream by coins     ZSET {w:creator}:earn:stream:coins
-- KEYS[12] stream by diamonds  ZSET {w:creator}:earn:stream:diamonds
-- ARGV[1] gift key (sender:request id)   ARGV[2] coins the sender paid (digits)
-- ARGV[3] revenue share percent          ARGV[4] now, ms
-- ARGV[5] idempotency ttl, s             ARGV[6] sender user id
-- ARGV[7] gift id ("" when the outbox entry predates gift ids)
-- ARGV[8] count (digits; 0 when unknown)  ARGV[9] when the gift was paid, ms (digits)
-- ARGV[10] report retention, s (digits)   ARGV[11] stream gap, ms (digits)
--
-- Returns {status, diamonds, duplicate}:
--   {"ok", diamonds credited, 0}   credited now
--   {"ok", diamonds credited, 1}   already credited: nothing moved, nothing counted
--   {"bad_argument", 0, 0}         nothing moved
--
-- diamonds = floor(coins * share / 100); the platform keeps coins - diamonds,
-- so that for every gift coins debited = diamonds + platform share exactly.
--
-- The earnings keys are reports, never balances: they are counted here, after
-- the idempotency check, so that each gift counts once, like its credit.
-- Report hashes hold `sends`, `count`, `coins`, `diamonds`, and per gift
-- `g:<gift>:count|coins|diamonds`; a day's also `h:<hour>:coins|diamonds`
-- (hour 0-23, UTC); the stream's also `started` and `last` (ms). A stream is
-- a run of gifts with no gap longer than ARGV[11]; a gift paid before the
-- current stream began (settled late) counts in its day, not in the stream.

local previous = redis.call("GET", KEYS[3])
if previous then
  return {"ok", tonumber(previous), 1}
end
local function digits(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[0-9]+$") ~= nil
end
if not (digits(ARGV[2], 15) and digits(ARGV[3], 3) and digits(ARGV[8], 9)
        and digits(ARGV[9], 15) and digits(ARGV[10], 10) and digits(ARGV[11], 12))
    or tonumber(ARGV[3]) > 100
    or string.match(ARGV[6], "^[A-Za-z0-9_-]+$") == nil
    or string.match(ARGV[7], "^[a-z0-9_]*$") == nil or #ARGV[7] > 32 then
  return {"bad_argument", 0, 0}
end
local coins = tonumber(ARGV[2])
local diamonds = math.floor(coins * tonumber(ARGV[3]) / 100)
local platform = coins - diamonds

-- Writes only from here on: first the money, then the reports.
redis.call("HINCRBY", KEYS[1], "diamonds", diamonds)
redis.call("HINCRBY", KEYS[1], "diamonds_earned", diamonds)
redis.call("HINCRBY", KEYS[1], "received", coins)
redis.call("HINCRBY", KEYS[1], "platform", platform)
redis.call("XADD", KEYS[2], "*",
  "kind", "credit", "gift_key", ARGV[1], "coins", coins,
  "diamonds", diamonds, "platform", platform, "ts", ARGV[4])
redis.call("SET", KEYS[3], diamonds, "EX", ARGV[5])

local sender, gift, count, paid_at = ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local day_ms = 86400000

local function count_in(totals, by_coins, by_diamonds)
  redis.call("HINCRBY", totals, "sends", 1)
  redis.call("HINCRBY", totals, "count", count)
  redis.call("HINCRBY", totals, "coins", coins)
  redis.call("HINCRBY", totals, "diamonds", diamonds)
  if gift ~= "" then
    redis.call("HINCRBY", totals, "g:" .. gift .. ":count", count)
    redis.call("HINCRBY", totals, "g:" .. gift .. ":coins", coins)
    redis.call("HINCRBY", totals, "g:" .. gift .. ":diamonds", diamonds)
  end
  redis.call("ZINCRBY", by_coins, coins, sender)
  redis.call("ZINCRBY", by_diamonds, diamonds, sender)
end

-- The gift's UTC day, kept for the retention after the day ends.
count_in(KEYS[4], KEYS[5], KEYS[6])
local hour = math.floor((paid_at % day_ms) / 3600000)
redis.call("HINCRBY", KEYS[4], "h:" .. hour .. ":coins", coins)
redis.call("HINCRBY", KEYS[4], "h:" .. hour .. ":diamonds", diamonds)
local day_gone = (math.floor(paid_at / day_ms) + 1) * day_ms + tonumber(ARGV[10]) * 1000
for i = 4, 6 do
  redis.call("PEXPIREAT", KEYS[i], day_gone)
end

count_in(KEYS[7], KEYS[8], KEYS[9])

local stream = redis.call("HMGET", KEYS[10], "started", "last")
local started, last = tonumber(stream[1]), tonumber(stream[2])
if not last or paid_at > last + tonumber(ARGV[11]) then
  -- A new stream begins with this gift.
  redis.call("DEL", KEYS[10], KEYS[11], KEYS[12])
  redis.call("HSET", KEYS[10], "started", paid_at, "last", paid_at)
  started, last = paid_at, paid_at
end
if paid_at >= started then
  if paid_at > last then
    redis.call("HSET", KEYS[10], "last", paid_at)
  end
  count_in(KEYS[10], KEYS[11], KEYS[12])
end
for i = 10, 12 do
  redis.call("EXPIRE", KEYS[i], ARGV[10])
end
return {"ok", diamonds, 0}
