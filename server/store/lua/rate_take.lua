-- rate_take.lua: take one token from a rate limit's bucket, or say when one
-- will be there. It moves no money.
--
-- KEYS[1] bucket HASH (tokens, ms), e.g. {w:user}:order_rate or {ip:addr}:order_rate
-- ARGV[1] tokens added a second (a number over 0)
-- ARGV[2] the most tokens the bucket holds (digits, at least 1)
-- ARGV[3] now, ms (digits)
--
-- Returns {1, 0} when a token was taken, {0, ms until one is there} when
-- not (nothing written then), {-1, 0} for bad arguments.

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not (rate and burst and now and rate > 0 and burst >= 1) then
  return {-1, 0}
end
local tokens = bucket_tokens(KEYS[1], rate, burst, now)
if tokens < 1 then
  return {0, math.ceil((1 - tokens) / rate * 1000)}
end
bucket_spend(KEYS[1], tokens, rate, burst, now)
return {1, 0}
