-- order_open.lua: count a new recharge order among a user's open ones, only
-- while they hold fewer than the cap. It moves no money.
--
-- KEYS[1] open  ZSET  {w:user}:open_orders  order id -> ms it expires
-- ARGV[1] the new order's id
-- ARGV[2] now, ms (digits)
-- ARGV[3] the order's time to live, ms (digits)
-- ARGV[4] the most open orders a user may hold (digits)
--
-- Returns {1, open orders now} when counted, {0, open orders} when the cap
-- is reached (nothing counted). An order leaves the set when it is paid
-- (ZREM by the server) or when it expires (here, at the next order).

local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
local open = redis.call("ZCARD", KEYS[1])
if open >= tonumber(ARGV[4]) then
  return {0, open}
end
redis.call("ZADD", KEYS[1], now + ttl, ARGV[1])
-- The set lives as long as its last order.
redis.call("PEXPIRE", KEYS[1], ttl)
return {1, open + 1}
