-- bench_minimal_gift.lua: the least a gift can do, the money baseline of scripts/bench.
--
-- KEYS[1] request   STRING  idempotency record of this request id
-- KEYS[2] balance   STRING  the sender's coins
-- KEYS[3] diamonds  STRING  the creator's diamonds
-- KEYS[4] ledger    STREAM  one entry a gift, trimmed to about ARGV[4] entries
-- ARGV[1] cost in coins (digits)        ARGV[2] diamonds credited (digits)
-- ARGV[3] idempotency ttl, s (digits)   ARGV[4] ledger bound (digits)
-- ARGV[5] sender user id                ARGV[6] creator user id
--
-- Returns {status, balance}:
--   {"ok", balance after}        coins debited, diamonds credited, entry written
--   {"duplicate", -1}            this request id was seen before: nothing moved
--   {"insufficient", balance}    nothing moved (the request id stays recorded)
--
-- Six commands a gift (the EVALSHA, SET, GET, DECRBY, INCRBY, XADD): no
-- rate limit, no catalog, no streak, no outbox, the creator credited at
-- once. A floor to hold server/store/lua/gift.lua against, not a wallet.

local cost = tonumber(ARGV[1])
if not redis.call("SET", KEYS[1], "1", "NX", "EX", ARGV[3]) then
  return {"duplicate", -1}
end
local balance = tonumber(redis.call("GET", KEYS[2]) or "0")
if balance < cost then
  return {"insufficient", balance}
end
balance = redis.call("DECRBY", KEYS[2], cost)
redis.call("INCRBY", KEYS[3], ARGV[2])
redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[4], "*",
  "sender", ARGV[5], "creator", ARGV[6], "coins", ARGV[1])
return {"ok", balance}
