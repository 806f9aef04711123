-- lib_gift.lua: the body of gift.lua as a function, for the scripts that
-- commit gifts (gift.lua, room_gifts.lua). Not a script of its own: the
-- server puts it in front of a script's text (server/store/scripts.py), after
-- lib_numbers.lua and lib_bucket.lua.
--
-- commit_gift(K, A): K and A are gift.lua's KEYS and ARGV, in the same
-- order, and it returns what gift.lua returns. See gift.lua.

local function positive(text, max_len)
  return type(text) == "string" and #text <= max_len and string.match(text, "^[1-9][0-9]*$") ~= nil
end

local function commit_gift(K, A)
  local previous = redis.call("GET", K[3])
  if previous then
    local balance, cost, gift, count, room =
      string.match(previous, "^(%d+)|(%d+)|[^|]*|([^|]*)|(%d+)|([^|]*)$")
    if not balance then
      return {"bad_record", 0, 0, 1, "", 0, ""}
    end
    return {"ok", tonumber(balance), tonumber(cost), 1, gift, tonumber(count), room}
  end

  if not (positive(A[4], 9) and positive(A[5], 9) and positive(A[11], 9)
          and string.match(A[10], "^[0-9]+$") and #A[10] <= 3) then
    return {"bad_argument", 0, 0, 0, "", 0, ""}
  end
  local count = tonumber(A[4])
  local price = tonumber(A[5])
  local share = tonumber(A[10])
  -- Doubles hold integers exactly only up to 2^53: refuse anything near it.
  if count > tonumber(A[11]) or share > 100 or count * price > 1e15 then
    return {"bad_argument", 0, 0, 0, "", 0, ""}
  end
  local cost = count * price
  local coins = tonumber(redis.call("HGET", K[1], "coins") or "0")

  -- The user's token bucket, across all their sockets and processes. Only
  -- gifts that go through spend a token; a refused one costs nothing.
  local rate = tonumber(A[12])
  local burst = tonumber(A[13])
  local now = tonumber(A[8])
  if not (rate and burst and rate > 0 and burst >= 1) then
    return {"bad_argument", 0, 0, 0, "", 0, ""}
  end
  local tokens = bucket_tokens(K[5], rate, burst, now)
  if tokens < 1 then
    return {"rate_limited", coins, 0, 0, "", 0, ""}
  end
  if coins < cost then
    return {"insufficient", coins, cost, 0, "", 0, ""}
  end

  -- Writes only from here on.
  bucket_spend(K[5], tokens, rate, burst, now)
  local balance = redis.call("HINCRBY", K[1], "coins", -cost)
  redis.call("HINCRBY", K[1], "spent", cost)
  local gift_key = A[1] .. ":" .. A[2]
  redis.call("XADD", K[2], "*",
    "kind", "gift", "req", A[2], "amount", -cost, "balance", balance,
    "gift", A[3], "count", count, "to", A[6], "room", A[7], "ts", A[8])
  redis.call("SET", K[3],
    digits(balance) .. "|" .. digits(cost) .. "|" .. gift_key .. "|" .. A[3]
    .. "|" .. digits(count) .. "|" .. A[7],
    "EX", A[9])
  -- The creator's credit, settled on the creator's shard by settle.lua. The
  -- share is fixed now so that a late settlement credits what was promised;
  -- the gift and count ride along for the creator's earnings reports.
  redis.call("HSET", K[4], gift_key,
    A[6] .. "|" .. digits(cost) .. "|" .. digits(share) .. "|" .. A[8] .. "|" .. A[7]
    .. "|" .. A[3] .. "|" .. digits(count))
  return {"ok", balance, cost, 0, A[3], count, A[7]}
end
