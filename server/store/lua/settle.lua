-- settle.lua: credit a creator for a batch of gifts, each exactly once, on
-- the creator's shard; and count them in the creator's earnings reports.
--
-- One call takes any number N >= 1 of gifts to the same creator. Each gift
-- is checked and credited on its own, in order, exactly as if it had been
-- settled alone; the report counters are summed over the batch first and
-- written once per field, which is what makes a storm's settlement cheap
-- (one HINCRBY per field per batch instead of about thirty per gift).
--
-- KEYS[1]        wallet   HASH   {w:creator}:wallet  (diamonds, received, platform, ...)
-- KEYS[2]        ledger   STREAM {w:creator}:ledger
-- KEYS[3..5]     all time: HASH {w:creator}:earn:all, ZSETs :coins and :diamonds
-- KEYS[6..8]     stream:   HASH {w:creator}:earn:stream, ZSETs :coins and :diamonds
-- KEYS[9..8+3D]  the D days the gifts were paid on, three keys a day:
--                HASH {w:creator}:earn:d:<day>, ZSETs :coins and :diamonds
-- KEYS[9+3D..]   settled STRING {w:creator}:settled:<gift key>, one per gift, in order
-- ARGV[1] now, ms          ARGV[2] idempotency ttl, s    ARGV[3] report retention, s
-- ARGV[4] stream gap, ms   ARGV[5] D, the number of days
-- then 8 fields per gift:
--   gift key (sender:request id), coins paid (digits), revenue share percent,
--   sender user id, gift id ("" when the outbox entry predates gift ids),
--   count (digits; 0 when unknown), when the gift was paid (ms, digits),
--   its day's place among the D days (1..D)
--
-- Returns 3 values per gift, in order, {status, diamonds, duplicate}:
--   "ok", diamonds credited, 0        credited now
--   "ok", diamonds credited, 1        already credited: nothing moved, nothing counted
--   "bad_argument", 0, 0              this gift is malformed: nothing moved for it
-- A malformed call (key or argument counts that do not match, or coins that
-- would not add up exactly) is an error reply, and nothing moves at all.
--
-- diamonds = floor(coins * share / 100); the platform keeps coins - diamonds,
-- so that for every gift coins debited = diamonds + platform share exactly.
--
-- The earnings keys are reports, never balances: a gift is counted after its
-- idempotency check, so that each gift counts once, like its credit.
-- Report hashes hold `sends`, `count`, `coins`, `diamonds`, and per gift
-- `g:<gift>:count|coins|diamonds`; a day's also `h:<hour>:coins|diamonds`
-- (hour 0-23, UTC); the stream's also `started` and `last` (ms). A stream is
-- a run of gifts with no gap longer than ARGV[4]; a gift paid before the
-- current stream began (settled late) counts in its day, not in the stream.

local FIELDS = 8
local function digits(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[0-9]+$") ~= nil
end

-- Checks of the whole call, before anything is read or written.
local days = tonumber(ARGV[5])
local gifts = (#ARGV - 5) / FIELDS
if not (digits(ARGV[2], 10) and digits(ARGV[3], 10) and digits(ARGV[4], 12)
        and digits(ARGV[5], 4))
    or gifts < 1 or gifts ~= math.floor(gifts) or #KEYS ~= 8 + 3 * days + gifts then
  return redis.error_reply("ERR settle.lua: key and argument counts do not match")
end
-- Lua numbers are doubles: sums stay exact below 2^53, which the caller's
-- batches are cut to respect.
local batch_coins = 0
for i = 0, gifts - 1 do
  local coins = ARGV[6 + i * FIELDS + 1]
  if digits(coins, 15) then
    batch_coins = batch_coins + tonumber(coins)
  end
end
if batch_coins >= 2 ^ 53 then
  return redis.error_reply("ERR settle.lua: the batch's coins do not add up exactly")
end

local function gift_is_valid(base)
  local coins, share, sender, gift = ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local count, paid_at, day = ARGV[base + 6], ARGV[base + 7], ARGV[base + 8]
  return digits(coins, 15) and digits(share, 3) and tonumber(share) <= 100
    and digits(count, 9) and digits(paid_at, 15)
    and digits(day, 4) and tonumber(day) >= 1 and tonumber(day) <= days
    and string.match(sender, "^[A-Za-z0-9_-]+$") ~= nil
    and string.match(gift, "^[a-z0-9_]*$") ~= nil and #gift <= 32
end

-- Sums to write at the end, per key and field (or member), in first-seen
-- order so that the same batch always makes the same writes.
local sums, keys_seen = {}, {}
local function add(command, key, name, amount)
  local entry = sums[key]
  if not entry then
    entry = {command = command, names = {}, values = {}}
    sums[key] = entry
    keys_seen[#keys_seen + 1] = key
  end
  if entry.values[name] == nil then
    entry.names[#entry.names + 1] = name
    entry.values[name] = 0
  end
  entry.values[name] = entry.values[name] + amount
end
local function hash_add(key, field, amount) add("HINCRBY", key, field, amount) end
local function rank_add(key, member, amount) add("ZINCRBY", key, member, amount) end
local function forget(key)
  local entry = sums[key]
  if entry then
    entry.names, entry.values = {}, {}
  end
end

local function count_in(totals, by_coins, by_diamonds, sender, gift, count, coins, diamonds)
  hash_add(totals, "sends", 1)
  hash_add(totals, "count", count)
  hash_add(totals, "coins", coins)
  hash_add(totals, "diamonds", diamonds)
  if gift ~= "" then
    hash_add(totals, "g:" .. gift .. ":count", count)
    hash_add(totals, "g:" .. gift .. ":coins", coins)
    hash_add(totals, "g:" .. gift .. ":diamonds", diamonds)
  end
  rank_add(by_coins, sender, coins)
  rank_add(by_diamonds, sender, diamonds)
end

local day_ms = 86400000
local gap = tonumber(ARGV[4])
local stream = redis.call("HMGET", KEYS[6], "started", "last")
local started, last = tonumber(stream[1]), tonumber(stream[2])
local stream_changed = false
local days_used = {}
local replies = {}
local credited = 0

for i = 0, gifts - 1 do
  local base = 5 + i * FIELDS
  local settled_key = KEYS[8 + 3 * days + i + 1]
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
    local gift_key, sender, gift = ARGV[base + 1], ARGV[base + 4], ARGV[base + 5]
    local coins = tonumber(ARGV[base + 2])
    local diamonds = math.floor(coins * tonumber(ARGV[base + 3]) / 100)
    local platform = coins - diamonds
    local count, paid_at, day = tonumber(ARGV[base + 6]), tonumber(ARGV[base + 7]), tonumber(ARGV[base + 8])
    credited = credited + 1

    -- The money: summed into the wallet below, recorded here gift by gift.
    hash_add(KEYS[1], "diamonds", diamonds)
    hash_add(KEYS[1], "diamonds_earned", diamonds)
    hash_add(KEYS[1], "received", coins)
    hash_add(KEYS[1], "platform", platform)
    redis.call("XADD", KEYS[2], "*",
      "kind", "credit", "gift_key", gift_key, "coins", coins,
      "diamonds", diamonds, "platform", platform, "ts", ARGV[1])
    redis.call("SET", settled_key, diamonds, "EX", ARGV[2])

    -- The reports: the gift's UTC day (and hour), all time, the stream.
    local day_key = 8 + 3 * (day - 1)
    count_in(KEYS[day_key + 1], KEYS[day_key + 2], KEYS[day_key + 3],
      sender, gift, count, coins, diamonds)
    local hour = math.floor((paid_at % day_ms) / 3600000)
    hash_add(KEYS[day_key + 1], "h:" .. hour .. ":coins", coins)
    hash_add(KEYS[day_key + 1], "h:" .. hour .. ":diamonds", diamonds)
    days_used[day] = (math.floor(paid_at / day_ms) + 1) * day_ms + tonumber(ARGV[3]) * 1000

    count_in(KEYS[3], KEYS[4], KEYS[5], sender, gift, count, coins, diamonds)

    if not last or paid_at > last + gap then
      -- A new stream begins with this gift: what the batch counted in the
      -- old one goes with it.
      redis.call("DEL", KEYS[6], KEYS[7], KEYS[8])
      forget(KEYS[6]); forget(KEYS[7]); forget(KEYS[8])
      started, last = paid_at, paid_at
      stream_changed = true
    end
    if paid_at >= started then
      if paid_at > last then
        last = paid_at
        stream_changed = true
      end
      count_in(KEYS[6], KEYS[7], KEYS[8], sender, gift, count, coins, diamonds)
    end

    replies[#replies + 1] = "ok"
    replies[#replies + 1] = diamonds
    replies[#replies + 1] = 0
  end
end

if credited == 0 then
  return replies
end
for _, key in ipairs(keys_seen) do
  local entry = sums[key]
  for _, name in ipairs(entry.names) do
    if entry.command == "ZINCRBY" then
      redis.call("ZINCRBY", key, entry.values[name], name)
    else
      redis.call("HINCRBY", key, name, entry.values[name])
    end
  end
end
if stream_changed then
  redis.call("HSET", KEYS[6], "started", started, "last", last)
end
for day = 1, days do
  if days_used[day] then
    for k = 1, 3 do
      redis.call("PEXPIREAT", KEYS[8 + 3 * (day - 1) + k], days_used[day])
    end
  end
end
for i = 6, 8 do
  redis.call("EXPIRE", KEYS[i], ARGV[3])
end
return replies
