-- gift.lua: a viewer spends coins on a gift, on the sender's wallet shard.
--
-- KEYS[1] wallet   HASH   {w:sender}:wallet  (coins, spent, ...)
-- KEYS[2] ledger   STREAM {w:sender}:ledger
-- KEYS[3] request  STRING {w:sender}:req:<request id>   idempotency record
-- KEYS[4] outbox   HASH   {w:sender}:outbox  gift key -> pending creator credit,
--                  creator|coins|share|ts_ms|room|gift|count
-- KEYS[5] rate     HASH   {w:sender}:gift_rate  token bucket: tokens, ms
-- ARGV[1] sender user id       ARGV[2] request id     ARGV[3] gift id
-- ARGV[4] count (digits)       ARGV[5] unit price in coins (digits)
-- ARGV[6] creator user id      ARGV[7] room id        ARGV[8] now, ms
-- ARGV[9] idempotency ttl, s   ARGV[10] revenue share percent (digits)
-- ARGV[11] max count          ARGV[12] gifts per second per user (decimal)
-- ARGV[13] burst (digits)
--
-- Returns {status, balance, cost, duplicate, gift, count, room}:
--   {"ok", balance after, cost, 0, gift, count, room}   coins debited now
--   {"ok", balance after, cost, 1, gift, count, room}   this request id was
--                       already debited: its first outcome (and the first
--                       request's gift, count and room, whatever a retry
--                       says); nothing moved
--   {"insufficient", balance, cost, 0, "", 0, ""}       nothing moved
--   {"rate_limited", balance, 0, 0, "", 0, ""}          nothing moved: the user
--                       sent more gifts than the per-user rate allows
--   {"bad_argument", 0, 0, 0, "", 0, ""}                nothing moved (a server bug)
--
-- Every check comes before the first write: Redis does not roll a script
-- back, so a failure half way would leave half a gift.

local function positive(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[1-9][0-9]*$") ~= nil
end

local previous = redis.call("GET", KEYS[3])
if previous then
  local balance, cost, gift, count, room =
    string.match(previous, "^(%d+)|(%d+)|[^|]*|([^|]*)|(%d+)|([^|]*)$")
  if not balance then
    return {"bad_record", 0, 0, 1, "", 0, ""}
  end
  return {"ok", tonumber(balance), tonumber(cost), 1, gift, tonumber(count), room}
end

if not (positive(ARGV[4], 9) and positive(ARGV[5], 9) and positive(ARGV[11], 9)
        and string.match(ARGV[10], "^[0-9]+$") and #ARGV[10] <= 3) then
  return {"bad_argument", 0, 0, 0, "", 0, ""}
end
local count = tonumber(ARGV[4])
local price = tonumber(ARGV[5])
local share = tonumber(ARGV[10])
-- Doubles hold integers exactly only up to 2^53: refuse anything near it.
if count > tonumber(ARGV[11]) or share > 100 or count * price > 1e15 then
  return {"bad_argument", 0, 0, 0, "", 0, ""}
end
local cost = count * price
local coins = tonumber(redis.call("HGET", KEYS[1], "coins") or "0")

-- The user's token bucket, across all their sockets and processes. Only
-- gifts that go through spend a token; a refused one costs nothing.
local rate = tonumber(ARGV[12])
local burst = tonumber(ARGV[13])
local now = tonumber(ARGV[8])
if not (rate and burst and rate > 0 and burst >= 1) then
  return {"bad_argument", 0, 0, 0, "", 0, ""}
end
local bucket = redis.call("HMGET", KEYS[5], "tokens", "ms")
local tokens = tonumber(bucket[1]) or burst
local last_ms = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last_ms) * rate / 1000)
if tokens < 1 then
  return {"rate_limited", coins, 0, 0, "", 0, ""}
end
if coins < cost then
  return {"insufficient", coins, cost, 0, "", 0, ""}
end

-- Writes only from here on.
redis.call("HSET", KEYS[5], "tokens", tokens - 1, "ms", now)
-- A bucket left alone refills completely; let it go then.
redis.call("PEXPIRE", KEYS[5], math.ceil(burst / rate * 1000) + 1000)
local balance = redis.call("HINCRBY", KEYS[1], "coins", -cost)
redis.call("HINCRBY", KEYS[1], "spent", cost)
local gift_key = ARGV[1] .. ":" .. ARGV[2]
redis.call("XADD", KEYS[2], "*",
  "kind", "gift", "req", ARGV[2], "amount", -cost, "balance", balance,
  "gift", ARGV[3], "count", count, "to", ARGV[6], "room", ARGV[7], "ts", ARGV[8])
redis.call("SET", KEYS[3],
  balance .. "|" .. cost .. "|" .. gift_key .. "|" .. ARGV[3] .. "|" .. count .. "|" .. ARGV[7],
  "EX", ARGV[9])
-- The creator's credit, settled on the creator's shard by settle.lua. The
-- share is fixed now so that a late settlement credits what was promised;
-- the gift and count ride along for the creator's earnings reports.
redis.call("HSET", KEYS[4], gift_key,
  ARGV[6] .. "|" .. cost .. "|" .. share .. "|" .. ARGV[8] .. "|" .. ARGV[7]
  .. "|" .. ARGV[3] .. "|" .. count)
return {"ok", balance, cost, 0, ARGV[3], count, ARGV[7]}
