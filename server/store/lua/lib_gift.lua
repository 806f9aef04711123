-- lib_gift.lua: the body of gift.lua as a function, for the scripts that
-- commit gifts (gift.lua, room_gifts.lua). Not a script of its own: the
-- server puts it in front of a script's text (server/store/scripts.py),
-- after lib_numbers.lua.
--
-- commit_gift(key_base, arg_base, announce, credit) commits the gift whose
-- KEYS are KEYS[key_base + 1], KEYS[key_base + 2], ... and whose ARGV are
-- ARGV[arg_base + 1], ..., each in gift.lua's order (gift.lua passes 0, 0),
-- and returns gift.lua's eight values as eight results, not as a table (see
-- gift.lua), then for a gift paid now a ninth: the sender's coins counted in
-- the creator's fan club after it (-1 for not a member), which the server
-- keeps to show their level on their next gift without reading it. It reads KEYS and ARGV in place: room_gifts.lua commits a few
-- gifts a call, and copying each gift's keys and arguments into tables of
-- its own was a measurable part of that script's cost.
-- `announce`, when given, is called with arg_base once every check has
-- passed, before the first write, and returns the seq of the gift's room
-- event, which the request's record keeps: a retry of the request is then
-- answered with that seq and shown nowhere again.
-- `credit`, when given, is called with (arg_base, cost, share, gift key) in
-- place of writing the creator's pending credit to the outbox
-- (KEYS[key_base + 4], then unused): the caller credits the creator in the
-- same call.
--
-- The user's gift token bucket lives in the wallet hash (`gift_mtokens`,
-- thousandths of a token, and `gift_ms`), and so do the user's spending
-- limits and what they have spent against them (`budget`, `budget_spent`:
-- lib_budget.lua), and so does the hash of the last entry of the user's
-- ledger (`chain`: lib_chain.lua) and the sender's fan club memberships
-- (`fan:<creator>`: fanclub.lua), so that one HMGET reads and one HSET
-- writes everything a gift checks and changes on the wallet.

local find = string.find

-- A count, price or cap: one to nine digits, the first not 0. `text` is an
-- ARGV value: a string, or nil past the last.
local function positive(text)
  return text ~= nil and #text <= 9 and find(text, "^[1-9][0-9]*$") ~= nil
end

-- What a request's record says: balance|cost|gift key|gift|count|room, then
-- |seq when the gift's event was numbered in the same call.
local function recorded(previous)
  local balance, cost, gift, count, room, seq =
    string.match(previous, "^(%d+)|(%d+)|[^|]*|([^|]*)|(%d+)|([^|]*)|?(%d*)$")
  if not balance then
    return "bad_record", 0, 0, 1, "", 0, "", 0
  end
  return "ok", tonumber(balance), tonumber(cost), 1, gift, tonumber(count), room, tonumber(seq) or 0
end

local function commit_gift(key_base, arg_base, announce, credit)
  local wallet_key, ledger_key, request_key = unpack(KEYS, key_base + 1, key_base + 3)
  local sender, request, gift, count_text, price_text, creator, room, now_text, ttl,
    share_text, max_text, rate_text, burst_text, stream = unpack(ARGV, arg_base + 1, arg_base + 14)

  local previous = redis.call("GET", request_key)
  if previous then
    return recorded(previous)
  end

  if not (positive(count_text) and positive(price_text) and positive(max_text)
          and find(share_text, "^[0-9]+$") and #share_text <= 3) then
    return "bad_argument", 0, 0, 0, "", 0, "", 0
  end
  local count = tonumber(count_text)
  local price = tonumber(price_text)
  local share = tonumber(share_text)
  -- Doubles hold integers exactly only up to 2^53: refuse anything near it.
  -- The creator's credit counts the cost in hundredths (lib_credit.lua),
  -- so a cost stays below 10^13.
  if count > tonumber(max_text) or share > 100 or count * price > 1e13 then
    return "bad_argument", 0, 0, 0, "", 0, "", 0
  end
  local rate = tonumber(rate_text)
  local burst = tonumber(burst_text)
  local now = tonumber(now_text)
  if not (rate and burst and now and rate > 0 and burst >= 1)
          or not stream or find(stream, "|", 1, true) then
    return "bad_argument", 0, 0, 0, "", 0, "", 0
  end
  local cost = count * price
  -- The sender's membership of the creator's fan club, when they joined
  -- (fanclub.lua): "<joined ms>|<coins counted>", this gift's cost added.
  local fan_field = "fan:" .. creator
  local wallet = redis.call("HMGET", wallet_key, "coins", "spent", "gift_mtokens", "gift_ms",
    "budget", "budget_spent", "chain", fan_field)
  local coins = tonumber(wallet[1] or "0")

  -- The user's token bucket, across all their sockets and processes. Only
  -- gifts that go through spend a token; a refused one costs nothing. A
  -- wallet that never sent a gift has a full bucket.
  local held = tonumber(wallet[3])
  local tokens = burst
  if held then
    local since = math.max(0, now - (tonumber(wallet[4]) or now))
    tokens = math.min(burst, held / 1000 + since * rate / 1000)
  end
  if tokens < 1 then
    return "rate_limited", coins, 0, 0, "", 0, "", 0
  end
  if coins < cost then
    return "insufficient", coins, cost, 0, "", 0, "", 0
  end
  -- The sender's own spending limits (lib_budget.lua), when they set any.
  local budget_spent = nil
  if wallet[5] then
    local within, counted = budget_check(wallet[5], wallet[6], now, cost)
    if not within then
      -- What is left goes back where a refusal has no cost to report.
      return "budget_exceeded", coins, counted, 0, "", 0, "", 0
    end
    budget_spent = counted
  end

  -- Writes only from here on. The room event first: if numbering it fails
  -- (a damaged seq key), nothing has moved yet.
  local seq = 0
  if announce then
    seq = announce(arg_base)
  end
  local balance = coins - cost
  -- Each amount formatted once. count_text passed positive(), so it is
  -- count's digits already; cost is at least 1, so -cost's digits are "-"
  -- then cost's.
  local balance_text, cost_text = digits(balance), digits(cost)
  -- The entry first: the wallet keeps its hash (lib_chain.lua).
  local chain = chained_entry(ledger_key, wallet[7] or "",
    "kind", "gift", "req", request, "amount", "-" .. cost_text, "balance", balance_text,
    "gift", gift, "count", count_text, "to", creator, "room", room, "ts", now_text)
  local changes = { "coins", balance_text,
    "spent", digits(tonumber(wallet[2] or "0") + cost),
    "gift_mtokens", digits(math.floor((tokens - 1) * 1000)), "gift_ms", now_text,
    "chain", chain }
  if budget_spent then
    changes[#changes + 1], changes[#changes + 2] = "budget_spent", budget_spent
  end
  local fan_after = -1
  if wallet[8] then
    local joined, fan_coins = string.match(wallet[8], "^(%d+)|(%d+)$")
    if joined then
      fan_after = tonumber(fan_coins) + cost
      changes[#changes + 1], changes[#changes + 2] = fan_field, joined .. "|" .. digits(fan_after)
    end
  end
  redis.call("HSET", wallet_key, unpack(changes))
  local gift_key = sender .. ":" .. request
  local seq_part = announce and ("|" .. digits(seq)) or ""
  local record = balance_text .. "|" .. cost_text .. "|" .. gift_key .. "|" .. gift
    .. "|" .. count_text .. "|" .. room .. seq_part
  redis.call("SET", request_key, record, "EX", ttl)
  if credit then
    credit(arg_base, cost, share, gift_key)
  else
    -- The creator's credit, settled on the creator's shard by settle.lua. The
    -- share is fixed now so that a late settlement credits what was promised;
    -- the gift, count and stream ride along for the creator's earnings reports.
    redis.call("HSET", KEYS[key_base + 4], gift_key,
      creator .. "|" .. cost_text .. "|" .. digits(share) .. "|" .. now_text .. "|" .. room
      .. "|" .. gift .. "|" .. count_text .. "|" .. stream)
  end
  return "ok", balance, cost, 0, gift, count, room, seq, fan_after
end
