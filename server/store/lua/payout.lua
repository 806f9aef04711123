-- payout.lua: the payout provider's word on a withdrawal, applied once, on
-- the creator's shard. "paid": its reserved diamonds move to `paid_out`.
-- "failed": they return to the balance, and the day's total that counted
-- them forgets them. Only a pending withdrawal moves; the same word again is
-- a duplicate; the other word after it (a late "paid" after "failed") is a
-- conflict, refused with nothing moved (the caller logs it).
--
-- KEYS[1] wallet  HASH   {w:creator}:wallet
-- KEYS[2] ledger  STREAM {w:creator}:ledger
-- KEYS[3] record  HASH   {w:creator}:wd:<withdrawal id>
-- KEYS[4] day     STRING {w:creator}:wday:<the record's day>
-- ARGV[1] "paid" or "failed"   ARGV[2] the provider's payout id   ARGV[3] now, ms
--
-- Returns {status, the withdrawal's status after}:
--   "ok"          applied now       "duplicate"  it already had this outcome
--   "conflict"    it had the other   "unknown"    no such withdrawal
--   "bad_argument"

local outcome = ARGV[1]
if outcome ~= "paid" and outcome ~= "failed" then
  return {"bad_argument", ""}
end
local record = redis.call("HMGET", KEYS[3], "status", "diamonds", "id")
local status, diamonds, id = record[1], tonumber(record[2] or ""), record[3]
if not status then
  return {"unknown", ""}
end
if status == outcome then
  return {"duplicate", status}
end
if status ~= "pending" or not diamonds then
  return {"conflict", status}
end

redis.call("HINCRBY", KEYS[1], "reserved", -diamonds)
local kind
if outcome == "paid" then
  redis.call("HINCRBY", KEYS[1], "paid_out", diamonds)
  kind = "payout"
else
  redis.call("HINCRBY", KEYS[1], "diamonds", diamonds)
  kind = "payout_failed"
  if redis.call("EXISTS", KEYS[4]) == 1 then
    redis.call("DECRBY", KEYS[4], diamonds)
  end
end
local chain = chained_entry(KEYS[2], redis.call("HGET", KEYS[1], "chain") or "",
  "kind", kind, "withdrawal", id, "diamonds", string.format("%d", diamonds),
  "payout", ARGV[2], "ts", ARGV[3])
redis.call("HSET", KEYS[1], "chain", chain)
redis.call("HSET", KEYS[3], "status", outcome, "updated", ARGV[3], "payout", ARGV[2])
return {"ok", outcome}
