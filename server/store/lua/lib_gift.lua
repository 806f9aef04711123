-- lib_gift.lua: the body of gift.lua as a function, for the scripts that
-- commit gifts (gift.lua, room_gifts.lua). Not a script of its own: the
-- server puts it in front of a script's text (server/store/scripts.py),
-- after lib_numbers.lua.
--
-- commit_gift(K, A, announce, credit): K and A are gift.lua's KEYS and ARGV,
-- in the same order, and it returns what gift.lua returns. See gift.lua.
-- `announce`, when given, is called once every check has passed, before the
-- first write, and returns the seq of the gift's room event, which the
-- request's record keeps: a retry of the request is then answered with that
-- seq and shown nowhere again.
-- `credit`, when given, is called with (cost, share, gift key) in place of
-- writing the creator's pending credit to the outbox (K[4], then unused):
-- the caller credits the creator in the same call.
--
-- The user's gift token bucket lives in the wallet hash (`gift_mtokens`,
-- thousandths of a token, and `gift_ms`), so that one HMGET reads and one
-- HSET writes everything a gift checks and changes on the wallet.

local function positive(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[1-9][0-9]*$") ~= nil
end

-- What a request's record says: balance|cost|gift key|gift|count|room, then
-- |seq when the gift's event was numbered in the same call.
local function recorded(previous)
  local balance, cost, gift, count, room, seq =
    string.match(previous, "^(%d+)|(%d+)|[^|]*|([^|]*)|(%d+)|([^|]*)|?(%d*)$")
  if not balance then
    return {"bad_record", 0, 0, 1, "", 0, "", 0}
  end
  return {"ok", tonumber(balance), tonumber(cost), 1, gift, tonumber(count), room, tonumber(seq) or 0}
end

local function commit_gift(K, A, announce, credit)
  local previous = redis.call("GET", K[3])
  if previous then
    return recorded(previous)
  end

  if not (positive(A[4], 9) and positive(A[5], 9) and positive(A[11], 9)
          and string.match(A[10], "^[0-9]+$") and #A[10] <= 3) then
    return {"bad_argument", 0, 0, 0, "", 0, "", 0}
  end
  local count = tonumber(A[4])
  local price = tonumber(A[5])
  local share = tonumber(A[10])
  -- Doubles hold integers exactly only up to 2^53: refuse anything near it.
  if count > tonumber(A[11]) or share > 100 or count * price > 1e15 then
    return {"bad_argument", 0, 0, 0, "", 0, "", 0}
  end
  local rate = tonumber(A[12])
  local burst = tonumber(A[13])
  local now = tonumber(A[8])
  if not (rate and burst and now and rate > 0 and burst >= 1) then
    return {"bad_argument", 0, 0, 0, "", 0, "", 0}
  end
  local cost = count * price
  local wallet = redis.call("HMGET", K[1], "coins", "spent", "gift_mtokens", "gift_ms")
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
    return {"rate_limited", coins, 0, 0, "", 0, "", 0}
  end
  if coins < cost then
    return {"insufficient", coins, cost, 0, "", 0, "", 0}
  end

  -- Writes only from here on. The room event first: if numbering it fails
  -- (a damaged seq key), nothing has moved yet.
  local seq = 0
  if announce then
    seq = announce()
  end
  local balance = coins - cost
  redis.call("HSET", K[1], "coins", digits(balance),
    "spent", digits(tonumber(wallet[2] or "0") + cost),
    "gift_mtokens", digits(math.floor((tokens - 1) * 1000)), "gift_ms", A[8])
  local gift_key = A[1] .. ":" .. A[2]
  redis.call("XADD", K[2], "*",
    "kind", "gift", "req", A[2], "amount", digits(-cost), "balance", digits(balance),
    "gift", A[3], "count", digits(count), "to", A[6], "room", A[7], "ts", A[8])
  local record = digits(balance) .. "|" .. digits(cost) .. "|" .. gift_key .. "|" .. A[3]
    .. "|" .. digits(count) .. "|" .. A[7]
  if announce then
    record = record .. "|" .. digits(seq)
  end
  redis.call("SET", K[3], record, "EX", A[9])
  if credit then
    credit(cost, share, gift_key)
  else
    -- The creator's credit, settled on the creator's shard by settle.lua. The
    -- share is fixed now so that a late settlement credits what was promised;
    -- the gift and count ride along for the creator's earnings reports.
    redis.call("HSET", K[4], gift_key,
      A[6] .. "|" .. digits(cost) .. "|" .. digits(share) .. "|" .. A[8] .. "|" .. A[7]
      .. "|" .. A[3] .. "|" .. digits(count))
  end
  return {"ok", balance, cost, 0, A[3], count, A[7], seq}
end
