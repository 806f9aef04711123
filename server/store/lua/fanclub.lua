-- fanclub.lua: a viewer joins a creator's fan club, paying its price in coins.
--
-- The price is a gift to the creator: it is paid exactly as gift.lua pays a
-- gift (commit_gift: the same checks, a `gift` ledger entry of gift
-- `fan_club`, the creator's credit pending in the outbox for settle.lua),
-- and in the same call the wallet records the membership, `fan:<creator>` =
-- "<joined ms>|<price>": the price counts toward the fan level, and so does
-- every later gift to that creator (lib_gift.lua). One join per club: a
-- member's second request with a new id is refused and pays nothing.
--
-- KEYS and ARGV: gift.lua's (the gift `fan_club`, count 1, the price).
-- Returns gift.lua's eight values; status "already_member" (nothing moved)
-- for a member's new request, "request_id_taken" for an id a gift of the
-- user's used. A retry of a join answers its first outcome.

local fan_field = "fan:" .. ARGV[6]
if ARGV[3] ~= "fan_club" or ARGV[4] ~= "1" then
  return redis.error_reply("fanclub.lua: the gift is fan_club, once")
end
if redis.call("EXISTS", KEYS[3]) == 0 and redis.call("HEXISTS", KEYS[1], fan_field) == 1 then
  return {"already_member", 0, 0, 0, "", 0, "", 0}
end
local status, balance, cost, duplicate, gift, count, room, seq = commit_gift(0, 0, nil, nil)
if status == "ok" and duplicate == 1 and gift ~= "fan_club" then
  -- The id paid for a gift before: this request is not that one.
  return {"request_id_taken", 0, 0, 0, "", 0, "", 0}
end
if status == "ok" and duplicate == 0 then
  redis.call("HSET", KEYS[1], fan_field, ARGV[8] .. "|" .. digits(cost))
end
return {status, balance, cost, duplicate, gift, count, room, seq}
